import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { processesOf } from '../../helpers/leftovers.js';
import { dropSpares, preparing, prepareSpare, sparesDir } from '../../../lib/storage/spares.js';
import { loadPool } from '../../../lib/storage/pool.js';
import { requireImage, type Image } from '../../../lib/image/store.js';

/**
 * dir pools keep a spare copy of an image, made in the background after a create, which the next
 * create of that image renames into place (storage/spares.ts).
 */
if (requireRoot(test)) {
  const env = new TestEnv('spare');
  // Spares start 10 s after a create (not beside the boot): at once here, for the CLI and the library.
  env.env.TSLXC_SPARE_DELAY_MS = '0';
  process.env.TSLXC_SPARE_DELAY_MS = '0';
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);
  const fail = {
    fail: (m: string) => {
      throw new Error(m);
    },
  } as never;
  const info = (pool: string) => JSON.parse(env.ok(fail, ['storage', 'info', pool, '--format', 'json']));
  const busybox = () => requireImage(env.paths, 'busybox');
  async function settled(pool: string): Promise<void> {
    for (let i = 0; i < 500 && preparing(env.paths, pool).length; i++) await new Promise((r) => setTimeout(r, 20));
  }

  test.serial('a create leaves a spare; the next create takes it, a private copy that boots', async (t) => {
    env.ok(t, ['storage', 'create', 'sp', 'dir']);
    const fp = busybox().fingerprint;
    env.ok(t, ['create', 'busybox', 'c1', '-s', 'sp']);
    await settled('sp');
    t.deepEqual(info('sp').spares, [fp], 'the first create started a spare of its image');
    const spare = path.join(sparesDir(env.paths, 'sp'), fp);
    const spareIno = fs.statSync(spare).ino;

    env.ok(t, ['launch', 'busybox', 'c2', '-s', 'sp']);
    const root = `${env.paths.stateDir}/containers/c2/rootfs`;
    t.is(fs.statSync(root).ino, spareIno, 'c2 got the spare (renamed, not copied)');
    t.is(env.ok(t, ['exec', 'c2', '--', 'cat', '/etc/hostname']), 'c2\n', 'with its own identity files');
    env.ok(t, ['exec', 'c2', '--', 'sh', '-c', 'echo mine > /etc/c2-only && rm /bin/vi']);
    t.true(fs.existsSync(path.join(busybox().rootfs, 'bin/vi')), 'the image is untouched');

    await settled('sp');
    t.deepEqual(info('sp').spares, [fp], 'and a new spare was made for the next one');
    t.false(fs.existsSync(path.join(spare, 'etc/c2-only')), 'a fresh copy of the image, not of c2');
    t.true(fs.existsSync(path.join(spare, 'bin/vi')));
    t.not(fs.statSync(spare).ino, spareIno);
    env.ok(t, ['delete', '--force', 'c2']);
  });

  test.serial('spare_roots=false removes the spares and makes none; bad values are refused', async (t) => {
    const bad = env.cli(['storage', 'set', 'sp', 'spare_roots=maybe']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /spare_roots.*true or false/);
    t.is(env.cli(['storage', 'create', 'sp2', 'dir', 'spare_roots=1']).code, 1);
    t.is(env.cli(['storage', 'create', 'sp3', 'overlay', 'spare_roots=true']).code, 1, 'an overlay pool copies nothing: no spares');
    t.is(env.cli(['storage', 'create', 'sp4', 'dir', 'nosuchkey=1']).code, 1, 'unknown keys are refused');
    t.false(fs.existsSync(`${env.paths.stateDir}/storage-pools/sp2.yaml`));

    env.ok(t, ['storage', 'set', 'sp', 'spare_roots=false']);
    t.false(fs.existsSync(sparesDir(env.paths, 'sp')), 'the spares are gone');
    env.ok(t, ['create', 'busybox', 'c3', '-s', 'sp']);
    t.false(fs.existsSync(sparesDir(env.paths, 'sp')), 'and no new one is made');
    t.regex(env.ok(t, ['storage', 'info', 'sp']), /^spare roots: \(off\)$/m);
    env.ok(t, ['storage', 'set', 'sp', 'spare_roots=true']);
    env.ok(t, ['delete', 'c3', 'c1']);
  });

  test.serial('a copy in progress is stopped (by PID) and removed when the spares are dropped; deleting the image drops its spares', async (t) => {
    // A tree big enough that its copy is still running when dropped.
    const src = path.join(env.root, 'big-image', 'rootfs');
    for (let d = 0; d < 40; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 250; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    const fake = { ...busybox(), fingerprint: 'f'.repeat(64), rootfs: src } as Image;
    const pool = loadPool(env.paths, 'sp');
    prepareSpare(env.paths, pool, fake);
    t.deepEqual(preparing(env.paths, 'sp'), [fake.fingerprint], 'the copy runs');
    t.not(processesOf(env).length, 0);
    prepareSpare(env.paths, pool, fake);
    t.is(fs.readdirSync(sparesDir(env.paths, 'sp')).filter((n) => n.startsWith('.pid-')).length, 1, 'one copy per image at a time');
    await dropSpares(env.paths, 'sp', fake.fingerprint);
    t.deepEqual(preparing(env.paths, 'sp'), []);
    t.deepEqual(processesOf(env), [], 'no copy is left running');
    t.deepEqual(
      fs.readdirSync(sparesDir(env.paths, 'sp')).filter((n) => n.includes(fake.fingerprint)),
      [],
      'nothing of it is left',
    );

    // By default the copy waits (10 s) before it starts: it is in progress, and stopped the same way.
    env.env.TSLXC_SPARE_DELAY_MS = '60000';
    env.ok(t, ['create', 'busybox', 'c4', '-s', 'sp']);
    t.deepEqual(preparing(env.paths, 'sp'), [busybox().fingerprint], 'waiting to copy');
    t.deepEqual(info('sp').spares, []);
    await dropSpares(env.paths, 'sp');
    t.deepEqual(processesOf(env), []);
    env.env.TSLXC_SPARE_DELAY_MS = '0';
    env.ok(t, ['create', 'busybox', 'c5', '-s', 'sp']);
    await settled('sp');
    t.deepEqual(info('sp').spares, [busybox().fingerprint]);
    env.ok(t, ['image', 'delete', 'busybox', '--force']);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/c4`));
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/c5`));
    t.deepEqual(info('sp').spares, [], "the image's spare went with it");
    env.ok(t, ['storage', 'delete', 'sp']);
    t.false(fs.existsSync(`${env.paths.stateDir}/storage-pools/sp`));
  });
}
