import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { launcherPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * `tslxc stop NAME` without node (native/clistop.c), run through bin/tslxc as users run it. PATH
 * starts with a fake `node` that exits 99: a stop that needed node fails with 99.
 */
if (requireRoot(test)) {
  const env = new TestEnv('nstop');
  const fakeDir = path.join(env.root, 'fakenode');
  fs.mkdirSync(fakeDir, { recursive: true });
  fs.writeFileSync(path.join(fakeDir, 'node'), '#!/bin/sh\necho "fake node: $*" >&2\nexit 99\n', { mode: 0o755 });
  const native = (args: string[]) => {
    const r = spawnSync(launcherPath, args, { env: { ...env.env, PATH: `${fakeDir}:${env.env.PATH}` }, encoding: 'utf8' });
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  };
  const status = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name)?.status;
  const runDir = (name: string) => path.join(env.paths.runDir, 'containers', name);
  const cgroupGone = (name: string) =>
    !fs.existsSync(`/sys/fs/cgroup/memory/${env.paths.cgroupPrefix}/${name}`) && !fs.existsSync(`/sys/fs/cgroup/${env.paths.cgroupPrefix}/${name}`);

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  test.serial("a running container stops without node, and leaves what node's stop leaves", (t) => {
    env.ok(t, ['create', 'busybox', 's1']);
    env.ok(t, ['start', 's1']);
    const r = native(['stop', 's1']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, '');
    t.is(r.stdout, '');
    t.is(status('s1'), 'Stopped');
    for (const f of ['monitor.pid', 'init.pid', 'console.sock', 'exec.sock', 'devices.json', 'disks']) t.false(fs.existsSync(path.join(runDir('s1'), f)), f);
    t.is(fs.readFileSync(path.join(runDir('s1'), 'exit'), 'utf8').trim(), 'stop');
    t.true(cgroupGone('s1'), 'no cgroup left');
    t.false(fs.existsSync(path.join(env.paths.runDir, 'locks', 'ct-s1.lock')), 'the lock was released');
    // Not running: node says so.
    const again = native(['stop', 's1']);
    t.is(again.code, 99);
    t.regex(env.cli(['stop', 's1']).stderr, /not running/);
  });

  test.serial('anything not plainly a running container of an unchanged config goes to node', (t) => {
    env.ok(t, ['start', 's1']);
    // The config was written since the start: its stop signal may have changed.
    const cfgFile = path.join(env.paths.stateDir, 'containers', 's1', 'config.yaml');
    const cfg = fs.readFileSync(cfgFile, 'utf8');
    fs.writeFileSync(`${cfgFile}.tmp`, cfg);
    fs.renameSync(`${cfgFile}.tmp`, cfgFile);
    t.is(native(['stop', 's1']).code, 99);
    t.is(status('s1'), 'Running');
    // Options, several names: node's.
    t.is(native(['stop', '--timeout', '5', 's1']).code, 99);
    t.is(native(['stop', 's1', 's2']).code, 99);
    // Its lock held by another command: node waits for it.
    const lock = spawnSync('flock', ['--version']);
    if (lock.status === 0) {
      const held = spawnSync('flock', ['-n', path.join(env.paths.runDir, 'locks', 'ct-s1.lock'), ...[launcherPath, 'stop', 's1']], {
        env: { ...env.env, PATH: `${fakeDir}:${env.env.PATH}` },
        encoding: 'utf8',
      });
      t.is(held.status, 99, held.stderr);
      t.is(status('s1'), 'Running');
    }
    env.ok(t, ['stop', 's1']);
    t.is(status('s1'), 'Stopped');
    // A fresh start writes a fresh stop.args: native again.
    env.ok(t, ['start', 's1']);
    t.is(native(['stop', 's1']).code, 0);
    t.true(cgroupGone('s1'));
  });

  test.serial('a process that entered its cgroups from outside is killed, and the cgroups go', async (t) => {
    const memory = `/sys/fs/cgroup/memory/${env.paths.cgroupPrefix}/s1`;
    if (!fs.existsSync('/sys/fs/cgroup/memory/cgroup.procs')) return t.pass('a cgroup v1 memory hierarchy only');
    env.ok(t, ['start', 's1']);
    const outsider = spawn('sleep', ['600'], { stdio: 'ignore' });
    const ended = new Promise<NodeJS.Signals | null>((resolve) => outsider.on('exit', (_code, sig) => resolve(sig)));
    try {
      fs.writeFileSync(path.join(memory, 'cgroup.procs'), String(outsider.pid));
      const r = native(['stop', 's1']);
      t.is(r.code, 0, r.stderr);
      t.is(await ended, 'SIGKILL');
      t.true(cgroupGone('s1'), 'no cgroup left');
    } finally {
      outsider.kill('SIGKILL');
    }
  });

  test.serial("a guest that does not stop in time is killed by node's --force", (t) => {
    env.ok(t, ['start', 's1']);
    // A signal busybox's init ignores, and a short timeout, in the start's stop.args.
    const file = path.join(runDir('s1'), 'stop.args');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[0] = '28'; // SIGWINCH
    lines[1] = '300';
    fs.writeFileSync(file, lines.join('\n'));
    const r = spawnSync(launcherPath, ['stop', 's1'], { env: env.env, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.is(status('s1'), 'Stopped');
    t.true(cgroupGone('s1'));
    env.ok(t, ['delete', 's1']);
  });
}
