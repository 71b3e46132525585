import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import test from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { processesOf } from '../../helpers/leftovers.js';

/**
 * Crash safety: a copy, snapshot or restore SIGKILLed mid-way leaves the old state or the new one,
 * never a half-made container or snapshot; the next run clears what the dead one left.
 */
if (requireRoot(test)) {
  const env = new TestEnv('cr');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const p of [
      ['plain', 'dir'],
      ['bt', 'btrfs', 'size=600MiB'],
    ]) {
      const c = env.cli(['storage', 'create', ...p]);
      if (c.code !== 0) throw new Error(c.stderr);
    }
  });
  leftoverHooks(test, env);

  const ctDir = `${env.paths.stateDir}/containers`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Runs tslxc ARGS, SIGKILLs it once `ready()` says the work is under way, and waits until it and its children are gone. */
  async function killMidway(args: string[], ready: () => boolean): Promise<boolean> {
    const child = spawn(process.execPath, [cliPath, ...args], { env: env.env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    let hit = false;
    for (let i = 0; i < 3000 && child.exitCode === null; i++) {
      if (ready()) {
        hit = true;
        break;
      }
      await sleep(5);
    }
    child.kill('SIGKILL');
    await exited;
    // Its cp/tar children die with it (parent-death signal): wait until none writes on.
    for (let i = 0; i < 200 && processesOf(env).length > 0; i++) await sleep(25);
    return hit;
  }
  const listed = (t: Parameters<typeof env.ok>[0]) =>
    JSON.parse(env.ok(t, ['list', '--format', 'json']))
      .map((c: { name: string }) => c.name)
      .sort();
  const partial = (dir: string, prefix: string) => () => {
    try {
      return fs.readdirSync(dir).some((e) => e.startsWith(prefix) && fs.readdirSync(path.join(dir, e)).length > 0);
    } catch {
      return false;
    }
  };

  test.serial('a copy killed mid-way: no container of that name; the next copy sweeps and succeeds', async (t) => {
    env.ok(t, ['launch', 'busybox', 'src', '-s', 'plain']);
    env.ok(t, [
      'exec',
      'src',
      '--',
      'sh',
      '-c',
      'for i in $(seq 1 400); do dd if=/dev/urandom of=/root/f$i bs=256k count=1 2>/dev/null; done; echo ok > /root/state',
    ]);
    env.ok(t, ['stop', 'src']);
    for (const [dst, pool] of [
      ['cp1', 'plain'],
      ['cp2', 'bt'],
    ]) {
      const hit = await killMidway(
        ['copy', 'src', dst, '-s', pool],
        () =>
          (partial(ctDir, `.copy-${dst}-`)() &&
            fs.existsSync(path.join(ctDir, fs.readdirSync(ctDir).find((e) => e.startsWith(`.copy-${dst}-`)) ?? 'x', 'rootfs'))) ||
          (pool === 'bt' && fs.existsSync(`${env.paths.stateDir}/storage-pools/bt/containers/${dst}/root`)),
      );
      t.true(hit, `${dst}: killed while copying`);
      t.deepEqual(listed(t), ['src']);
      const del = env.cli(['delete', dst]);
      t.is(del.code, 1);
      t.regex(del.stderr, /not found/);
      env.ok(t, ['copy', 'src', dst, '-s', pool]);
      t.deepEqual(
        fs.readdirSync(ctDir).filter((e) => e.startsWith('.')),
        [],
        'the dead copy was swept',
      );
      env.ok(t, ['start', dst]);
      t.is(env.ok(t, ['exec', dst, '--', 'sh', '-c', 'cat /root/state; ls /root | wc -l']), 'ok\n401\n');
      env.ok(t, ['delete', '--force', dst]);
    }
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/storage-pools/bt/containers`), []);
  });

  test.serial('a snapshot killed mid-way is not listed; a restore killed mid-way leaves the old root or the new', async (t) => {
    const snaps = `${ctDir}/src/snapshots`;
    fs.mkdirSync(snaps, { recursive: true });
    t.true(await killMidway(['snapshot', 'create', 'src', 's1'], partial(snaps, '.tmp-s1-')));
    t.deepEqual(JSON.parse(env.ok(t, ['snapshot', 'list', 'src', '--format', 'json'])), []);
    t.regex(env.cli(['snapshot', 'delete', 'src', 's1']).stderr, /not found/);
    env.ok(t, ['snapshot', 'create', 'src', 's1']);
    t.deepEqual(fs.readdirSync(snaps), ['s1'], "the dead snapshot's temp dir was swept");
    // A running container: a snapshot killed while it is frozen stays frozen for the reads (list,
    // info show it as it is, and why), and is thawed when the next operation takes its lock.
    env.ok(t, ['start', 'src']);
    // Kill inside the frozen window: the marker is written before the freeze, so wait for the
    // freezer itself to say FROZEN (the marker alone once let the kill land before the freeze).
    const marker = `${env.paths.runDir}/containers/src/snapshot-freeze.pid`;
    const freezerState = `/sys/fs/cgroup/freezer/${env.paths.cgroupPrefix}/src/freezer.state`;
    const frozen = () => fs.existsSync(marker) && fs.existsSync(freezerState) && fs.readFileSync(freezerState, 'utf8').trim() === 'FROZEN';
    t.true(await killMidway(['snapshot', 'create', 'src', 's2'], frozen));
    t.true(fs.existsSync(marker), 'killed while the container was frozen');
    const status = () => JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((c: { name: string }) => c.name === 'src');
    const st = status();
    t.is(st.status, 'Frozen');
    t.regex(env.ok(t, ['info', 'src']), /a snapshot or copy was killed while it held it frozen; "tslxc resume src" thaws it/);
    t.regex(env.ok(t, ['info', 'src']), /FROZEN \(a snapshot or copy was killed/);
    t.true(fs.existsSync(marker), 'a read changes nothing');
    t.regex(env.cli(['exec', 'src', '--', 'true']).stderr, /is paused.*tslxc resume src/);
    env.ok(t, ['resume', 'src']);
    t.is(status().status, 'Running');
    t.regex(env.ok(t, ['info', 'src']), /^Status: RUNNING$/m);
    t.false(fs.existsSync(marker));
    env.ok(t, ['exec', 'src', '--', 'sh', '-c', 'echo after > /root/state']);
    // Any locked operation does it, here a snapshot: it takes the lock, thaws, and snapshots the
    // container as running (frozen for its copy only).
    t.true(await killMidway(['snapshot', 'create', 'src', 's3'], frozen));
    t.is(status().status, 'Frozen');
    t.regex(env.ok(t, ['snapshot', 'create', 'src', 's4']), /frozen for \d+ ms/);
    t.is(status().status, 'Running');
    t.false(fs.existsSync(marker));
    env.ok(t, ['stop', 'src']);
    t.true(await killMidway(['snapshot', 'restore', 'src', 's1'], partial(`${ctDir}/src`, '.rootfs-new')));
    env.ok(t, ['start', 'src']);
    const state = env.ok(t, ['exec', 'src', '--', 'sh', '-c', 'cat /root/state; ls /root | wc -l']);
    t.true(state === 'after\n401\n' || state === 'ok\n401\n', state);
    env.ok(t, ['stop', 'src']);
    env.ok(t, ['snapshot', 'restore', 'src', 's1']);
    t.deepEqual(
      fs.readdirSync(`${ctDir}/src`).filter((e) => e.startsWith('.')),
      [],
    );
    env.ok(t, ['start', 'src']);
    t.is(env.ok(t, ['exec', 'src', '--', 'cat', '/root/state']), 'ok\n');
    // A publish of the running container killed while it holds it frozen: the same marker, so the
    // same account in the reads and the same thaw by the next locked command.
    t.true(await killMidway(['publish', 'src', '--force', '--alias', 'crashpub'], frozen));
    t.is(status().status, 'Frozen');
    t.regex(env.ok(t, ['info', 'src']), /killed while it held it frozen/);
    t.not(env.cli(['image', 'info', 'crashpub']).code, 0, 'no image from a killed publish');
    env.ok(t, ['snapshot', 'create', 'src', 's5']);
    t.is(status().status, 'Running');
    t.false(fs.existsSync(marker));
    env.ok(t, ['delete', '--force', 'src']);
    for (const p of ['plain', 'bt']) env.ok(t, ['storage', 'delete', p]);
  });
}
