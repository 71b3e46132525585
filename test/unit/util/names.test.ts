import test from 'ava';
import { validateInstanceName, validateAlias } from '../../../lib/util/names.js';

test('valid container names pass', (t) => {
  for (const n of ['dev1', 'a', 'web-01', 'x'.repeat(63), '0a']) t.is(validateInstanceName(n), n);
});

test('invalid container names are refused with one line', (t) => {
  for (const n of ['', 'Dev1', '-a', 'a-', 'a_b', 'a.b', '../etc', 'a/b', 'x'.repeat(64), '123', 'dev 1', 'é']) {
    const err = t.throws(() => validateInstanceName(n), undefined, n);
    t.false(err!.message.includes('\n'));
    t.regex(err!.message, /Invalid container name/);
  }
});

test('aliases allow slashes but not traversal', (t) => {
  t.is(validateAlias('debian/12'), 'debian/12');
  for (const a of ['../x', 'a//b', '/abs', 'a/../b', 'a/./b', '']) t.throws(() => validateAlias(a), undefined, a);
});
