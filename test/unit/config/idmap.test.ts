import test from 'ava';
import {
  buildRanges,
  DEFAULT_HOST_RANGE,
  formatIdmap,
  idmapArgs,
  parseIdmapJson,
  parseRawIdmap,
  parseSubidFile,
  toContainer,
  toHost,
} from '../../../lib/config/idmap.js';
import { validateKey } from '../../../lib/config/schema.js';

test("root's subuid entry is the host range; none: the default", (t) => {
  t.deepEqual(parseSubidFile('_lxd:100000:65536\nroot:200000:1000000\n'), { base: 200000, size: 1000000 });
  t.is(parseSubidFile('alice:100000:65536\n'), undefined);
  t.is(parseSubidFile('root:x:1\nroot:5:0\n'), undefined);
  t.deepEqual(DEFAULT_HOST_RANGE, { base: 1000000, size: 1000000000 });
});

test('raw.idmap: LXD syntax, ranges, comments; bad lines are one-line errors', (t) => {
  t.deepEqual(parseRawIdmap('both 1000 1000\n# team\nuid 2000-2009 500-509\n'), [
    { kind: 'both', hostid: 1000, nsid: 1000, count: 1 },
    { kind: 'uid', hostid: 2000, nsid: 500, count: 10 },
  ]);
  for (const bad of ['both 1000', 'user 1 1', 'uid 5-1 5-1', 'uid 1-3 1-2', '', '# only a comment', 'both 0 0', 'gid 0-9 100-109']) {
    const e = t.throws(() => parseRawIdmap(bad));
    t.regex(e!.message, /^Invalid value for raw\.idmap/);
  }
});

test('the map: the range with raw entries punched in, and what the helper gets', (t) => {
  const uid = buildRanges(100000, 65536, parseRawIdmap('both 4321 1000'), 'uid');
  t.deepEqual(uid, [
    { nsid: 0, hostid: 100000, count: 1000 },
    { nsid: 1000, hostid: 4321, count: 1 },
    { nsid: 1001, hostid: 101001, count: 64535 },
  ]);
  t.is(toHost(uid, 0), 100000);
  t.is(toHost(uid, 1000), 4321);
  t.is(toContainer(uid, 101001), 1001);
  t.is(toContainer(uid, 5), undefined);
  const gid = buildRanges(100000, 65536, [], 'gid');
  t.deepEqual(idmapArgs({ uid: uid.slice(0, 1), gid }), ['--uidmap', '0:100000:1000', '--gidmap', '0:100000:65536']);
  t.deepEqual(parseIdmapJson(formatIdmap({ uid, gid })), { uid, gid });
  t.throws(() => buildRanges(100000, 65536, parseRawIdmap('both 100005 7'), 'uid'), { message: /already in the container's range/ });
  t.throws(() => buildRanges(100000, 65536, parseRawIdmap('both 5 7\nuid 9 7'), 'uid'), { message: /mapped twice/ });
});

test('the keys are known and checked; volatile.* is read-only', (t) => {
  validateKey('security.privileged', 'true');
  validateKey('security.idmap.isolated', 'false');
  validateKey('security.idmap.size', '65536');
  validateKey('raw.idmap', 'both 1000 1000');
  t.throws(() => validateKey('security.idmap.size', '10'), { message: /security\.idmap\.size/ });
  t.throws(() => validateKey('security.privileged', 'maybe'), { message: /security\.privileged/ });
  t.throws(() => validateKey('volatile.idmap.current', '[]'), { message: /^Cannot set volatile\.idmap\.current/ });
});
