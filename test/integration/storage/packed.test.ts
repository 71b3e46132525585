import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { processesOf } from '../../helpers/leftovers.js';
import { preparing, sparesDir } from '../../../lib/storage/spares.js';

/**
 * An imported image stays packed in the store; on a dir pool a create unpacks its archive straight
 * into the container's root (the tree written once, the store never holding it), and the pool's
 * spare of it is unpacked the same way (storage/drivers/dir.ts, storage/spares.ts).
 */
if (requireRoot(test)) {
  const env = new TestEnv('pk');
  env.env.TSLXC_SPARE_DELAY_MS = '0';
  let tarball = '';
  let bigTarball = '';
  let sshTarball = '';
  let fp = '';
  const imageDir = () => `${env.paths.stateDir}/images/${fp}`;
  const ctDir = `${env.paths.stateDir}/containers`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const hidden = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith('.')) : []);
  const fingerprintOf = (alias: string) => {
    const r = env.cli(['image', 'info', alias, '-f', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { fingerprint: string }).fingerprint;
  };
  async function settled(pool: string): Promise<void> {
    for (let i = 0; i < 1000 && preparing(env.paths, pool).length; i++) await sleep(20);
  }

  test.before(() => {
    for (const args of [
      ['image', 'build', 'busybox'],
      ['image', 'export', 'busybox', path.join(env.root, 'bb.tar.gz')],
      ['storage', 'create', 'plain', 'dir', 'spare_roots=false'],
      ['storage', 'create', 'sp', 'dir'],
    ]) {
      const r = env.cli(args);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
    tarball = path.join(env.root, 'bb.tar.gz');
    // The same image with 6,000 more files: an unpack that lasts long enough to be killed mid-way.
    const x = path.join(env.root, 'big');
    fs.mkdirSync(x);
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    run('tar', ['-xzf', tarball, '-C', x]);
    for (let d = 0; d < 30; d++) {
      fs.mkdirSync(path.join(x, 'rootfs', 'many', `d${d}`), { recursive: true });
      for (let f = 0; f < 200; f++) fs.writeFileSync(path.join(x, 'rootfs', 'many', `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    const pack = (file: string) =>
      run('tar', ['-czf', file, '--numeric-owner', '-C', x, 'metadata.yaml', 'rootfs', ...(fs.existsSync(path.join(x, 'templates')) ? ['templates'] : [])]);
    bigTarball = path.join(env.root, 'big.tar.gz');
    pack(bigTarball);
    // The image with an sshd (a stand-in file) and no host keys: a create makes its host keys and
    // authorizes tslxc's key, reading the image's files from the container's new root.
    fs.rmSync(path.join(x, 'rootfs', 'many'), { recursive: true, force: true });
    fs.mkdirSync(path.join(x, 'rootfs', 'etc', 'ssh'), { recursive: true });
    fs.mkdirSync(path.join(x, 'rootfs', 'usr', 'sbin'), { recursive: true });
    fs.writeFileSync(path.join(x, 'rootfs', 'usr', 'sbin', 'sshd'), '#!/bin/sh\n', { mode: 0o755 });
    sshTarball = path.join(env.root, 'ssh.tar.gz');
    pack(sshTarball);
    fs.rmSync(x, { recursive: true, force: true });
  });
  leftoverHooks(test, env);

  test.serial('launch of an imported image on a dir pool: unpacked into the container only, and it boots', async (t) => {
    env.ok(t, ['image', 'import', tarball, '--alias', 'bbi']);
    fp = fingerprintOf('bbi');
    env.ok(t, ['launch', 'bbi', 'p1', '-s', 'plain']);
    t.is(env.ok(t, ['exec', 'p1', '--', 'cat', '/etc/hostname']), 'p1\n');
    t.true(fs.existsSync(`${ctDir}/p1/rootfs/bin/busybox`));
    t.deepEqual(fs.readdirSync(imageDir()).sort(), ['metadata.yaml', 'original'], 'the store has no tree of it');
    t.deepEqual(hidden(`${ctDir}/p1`), [], 'no temp dir is left in the container');
    t.deepEqual(hidden(`${env.paths.stateDir}/images`), []);
    // The tree is the container's own: a write there is not seen by the next container.
    env.ok(t, ['exec', 'p1', '--', 'sh', '-c', 'echo mine > /etc/p1-only']);
    env.ok(t, ['create', 'bbi', 'p2', '-s', 'plain']);
    t.false(fs.existsSync(`${ctDir}/p2/rootfs/etc/p1-only`));
    t.true(fs.existsSync(`${ctDir}/p2/rootfs/bin/busybox`));
    t.false(fs.existsSync(path.join(imageDir(), 'rootfs')));
    env.ok(t, ['delete', '--force', 'p1', 'p2']);
  });

  test.serial('an image with sshd, packed: the create gives the container host keys and authorizes tslxc', async (t) => {
    env.ok(t, ['image', 'import', sshTarball, '--alias', 'sshd']);
    const out = env.ok(t, ['create', 'sshd', 'h1', '-s', 'plain']);
    const root = `${ctDir}/h1/rootfs`;
    t.true(fs.existsSync(`${root}/etc/ssh/ssh_host_ed25519_key`), 'host keys made');
    t.regex(fs.readFileSync(`${root}/root/.ssh/authorized_keys`, 'utf8'), /^ssh-ed25519 /m);
    t.notRegex(out, /NOT authorized/);
    t.false(fs.existsSync(`${env.paths.stateDir}/images/${fingerprintOf('sshd')}/rootfs`));
    env.ok(t, ['delete', 'h1']);
    env.ok(t, ['image', 'delete', 'sshd']);
  });

  test.serial('a btrfs pool unpacks a packed image into its image subvolume, not the store', async (t) => {
    env.ok(t, ['storage', 'create', 'bt', 'btrfs', 'size=600MiB']);
    env.ok(t, ['launch', 'bbi', 'b1', '-s', 'bt']);
    t.is(env.ok(t, ['exec', 'b1', '--', 'cat', '/etc/hostname']), 'b1\n');
    const sub = `${env.paths.stateDir}/storage-pools/bt/images/${fp}`;
    t.true(fs.statSync(path.join(sub, 'bin/busybox')).isFile());
    t.deepEqual(hidden(sub), [], 'no stage dir is left in the subvolume');
    t.false(fs.existsSync(path.join(sub, 'metadata.yaml')), 'only the rootfs is in it');
    t.is(fs.statSync(sub).mode & 0o7777, 0o755);
    t.deepEqual(fs.readdirSync(imageDir()).sort(), ['metadata.yaml', 'original'], 'the store has no tree of it');
    env.ok(t, ['create', 'bbi', 'b2', '-s', 'bt']);
    t.true(fs.existsSync(`${env.paths.stateDir}/storage-pools/bt/containers/b2/bin/busybox`));
    env.ok(t, ['delete', '--force', 'b1', 'b2']);
    env.ok(t, ['storage', 'delete', 'bt']);
  });

  test.serial("a dir pool's spare of a packed image is unpacked from the archive; the second launch takes it", async (t) => {
    env.ok(t, ['create', 'bbi', 's1', '-s', 'sp']);
    await settled('sp');
    const spare = path.join(sparesDir(env.paths, 'sp'), fp);
    t.true(fs.existsSync(path.join(spare, 'bin/busybox')), 'the spare is the unpacked tree');
    t.deepEqual(hidden(sparesDir(env.paths, 'sp')), [], 'no temp dir or pid file is left');
    t.false(fs.existsSync(path.join(imageDir(), 'rootfs')), 'still no tree in the store');
    const ino = fs.statSync(spare).ino;
    env.ok(t, ['launch', 'bbi', 's2', '-s', 'sp']);
    t.is(fs.statSync(`${ctDir}/s2/rootfs`).ino, ino, 's2 got the spare (renamed, not unpacked)');
    t.is(env.ok(t, ['exec', 's2', '--', 'cat', '/etc/hostname']), 's2\n');
    await settled('sp');
    t.true(fs.existsSync(path.join(spare, 'bin/busybox')), 'and the next spare was made');
    env.ok(t, ['delete', '--force', 's1', 's2']);
  });

  test.serial('image delete while the spare of a packed image is being made: the unpack is stopped and nothing is left', async (t) => {
    const spares = sparesDir(env.paths, 'sp');
    // Waiting to start (the default delay), and mid-unpack (a bigger archive, no delay).
    for (const [file, delay] of [
      [tarball, '60000'],
      [bigTarball, '0'],
    ] as const) {
      env.ok(t, ['image', 'import', file, '--alias', 'gone']);
      const gone = fingerprintOf('gone');
      env.env.TSLXC_SPARE_DELAY_MS = delay;
      try {
        env.ok(t, ['create', 'gone', 'g1', '-s', 'sp']);
      } finally {
        env.env.TSLXC_SPARE_DELAY_MS = '0';
      }
      if (delay === '0') for (let i = 0; i < 400 && !fs.existsSync(path.join(spares, `.tmp-${gone}`, 'rootfs')); i++) await sleep(5);
      t.deepEqual(preparing(env.paths, 'sp'), [gone], `being made (delay ${delay})`);
      env.ok(t, ['image', 'delete', 'gone', '--force']);
      t.deepEqual(preparing(env.paths, 'sp'), []);
      t.deepEqual(processesOf(env), [], 'no unpack is left running');
      t.deepEqual(
        fs.readdirSync(spares).filter((n) => n.includes(gone)),
        [],
        'nothing of its spare is left',
      );
      t.false(fs.existsSync(`${ctDir}/g1`));
      t.false(fs.existsSync(`${env.paths.stateDir}/images/${gone}`));
    }
  });

  test.serial('a create killed mid-unpack or after it leaves an Error container that delete removes; a failed unpack leaves nothing', async (t) => {
    env.ok(t, ['image', 'import', bigTarball, '--alias', 'big']);
    const big = fingerprintOf('big');
    const listed = () => JSON.parse(env.ok(t, ['list', '--format', 'json'])) as Array<{ name: string; status: string }>;
    const check = (name: string, why: string) => {
      t.is(listed().find((c) => c.name === name)?.status, 'Error', why);
      t.deepEqual(processesOf(env), [], `${why}: its tar died with it`);
      t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/images/${big}`).sort(), ['metadata.yaml', 'original'], `${why}: the store is untouched`);
      env.ok(t, ['delete', name]);
      t.false(fs.existsSync(`${ctDir}/${name}`), `${why}: delete removed it all`);
    };

    // Killed while tar writes into the container's temp dir.
    const child = spawn(process.execPath, [cliPath, 'create', 'big', 'k1', '-s', 'plain'], { env: env.env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    let hit = false;
    for (let i = 0; i < 3000 && child.exitCode === null && !hit; i++) {
      const tmp = fs.existsSync(`${ctDir}/k1`) ? fs.readdirSync(`${ctDir}/k1`).find((n) => n.startsWith('.unpack-')) : undefined;
      hit = !!tmp && fs.existsSync(`${ctDir}/k1/${tmp}/rootfs/many`);
      if (!hit) await sleep(2);
    }
    child.kill('SIGKILL');
    await exited;
    for (let i = 0; i < 200 && processesOf(env).length > 0; i++) await sleep(25);
    t.true(hit, 'killed mid-unpack');
    check('k1', 'killed mid-unpack');

    // Killed with the whole tree unpacked, before it is renamed to the root.
    const crashed = spawnSync(process.execPath, [cliPath, 'create', 'big', 'k2', '-s', 'plain'], {
      env: { ...env.env, TSLXC_TEST_CRASH_AT: 'create:unpacked' },
      encoding: 'utf8',
    });
    t.is(crashed.signal, 'SIGKILL', crashed.stderr);
    t.false(fs.existsSync(`${ctDir}/k2/rootfs`), 'no root: the tree is still in its temp dir');
    check('k2', 'killed before the rename');

    // A failed unpack (the stored archive damaged): one line, no container, no temp dir.
    const stored = path.join(env.paths.stateDir, 'images', big, 'original');
    const file = path.join(stored, fs.readdirSync(stored)[0]);
    const whole = fs.readFileSync(file);
    fs.writeFileSync(file, whole.subarray(0, whole.length >> 1));
    try {
      const r = env.cli(['create', 'big', 'k3', '-s', 'plain']);
      t.is(r.code, 1);
      t.regex(r.stderr, /Cannot unpack image .*tar.*\(if its archive is damaged, delete the image and import it again\)$/m);
      t.deepEqual(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !/^(copy|configure): /.test(l)).length,
        1,
        r.stderr,
      );
      t.false(fs.existsSync(`${ctDir}/k3`));
      t.false(listed().some((c) => c.name === 'k3'));
    } finally {
      fs.writeFileSync(file, whole);
    }
    env.ok(t, ['launch', 'big', 'k4', '-s', 'plain']);
    t.true(fs.existsSync(`${ctDir}/k4/rootfs/many/d29/f199`));
    env.ok(t, ['delete', '--force', 'k4']);
    env.ok(t, ['image', 'delete', 'big']);
  });
}
