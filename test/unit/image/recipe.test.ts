import test from 'ava';
import { findRecipe, loadRecipe, parseRecipe, listBuiltinRecipes } from '../../../lib/image/recipe.js';

test('built-in recipes load', (t) => {
  t.true(listBuiltinRecipes().includes('busybox'));
  t.true(listBuiltinRecipes().includes('debian'));
  const deb = loadRecipe(findRecipe('debian')!);
  t.is(deb.release, 'bookworm');
  t.is(deb.stopSignal, 'SIGRTMIN+3');
  t.is(deb.source.type, 'debootstrap');
  t.is(loadRecipe(findRecipe('debian')!, { release: '13' }).release, 'trixie');
  t.is(loadRecipe(findRecipe('busybox')!).stopSignal, 'SIGUSR2');
});

test('unknown keys and bad values are refused with the key named', (t) => {
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'busybox' }, colour: 'red' }, 'r.yaml'), { message: /unknown key "colour"/ });
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'busybox', mirror: 'm' } }, 'r.yaml'), { message: /unknown key "source.mirror"/ });
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'rpm' } }, 'r.yaml'), { message: /source.type "rpm" is unknown/ });
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'busybox' }, files: [{ path: '../etc/x', content: '' }] }, 'r.yaml'), { message: /files\[0\].path/ });
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'debootstrap', mirror: 'ftp://x' } }, 'r.yaml'), { message: /Invalid mirror/ });
  t.throws(() => parseRecipe({ name: 'x', source: { type: 'busybox' } }, 'r.yaml', { release: '../../x' }), { message: /Invalid release/ });
  t.throws(() => parseRecipe('just a string', 'r.yaml'), { message: /YAML mapping/ });
});

test('ubuntu: its bare name resolves through a remote; script, keyring and remote are checked', (t) => {
  t.true(listBuiltinRecipes().includes('ubuntu'));
  const u = loadRecipe(findRecipe('ubuntu')!, { release: '22.04' });
  t.is(u.release, 'jammy');
  t.is(u.remote, 'images:ubuntu/jammy');
  t.like(u.source, { type: 'debootstrap', script: 'gutsy' });
  const base = { name: 'x', source: { type: 'debootstrap', mirror: 'http://m/ubuntu' } };
  t.throws(() => parseRecipe({ ...base, remote: 'no-colon' }, 'x.yaml'), { message: /"remote" must be REMOTE:ALIAS/ });
  t.throws(() => parseRecipe({ ...base, source: { ...base.source, script: '../../bin/sh' } }, 'x.yaml'), { message: /source.script/ });
  t.throws(() => parseRecipe({ ...base, source: { ...base.source, keyring: 'rel/path' } }, 'x.yaml'), { message: /source.keyring/ });
  t.is(parseRecipe(base, 'x.yaml').remote, undefined);
});
