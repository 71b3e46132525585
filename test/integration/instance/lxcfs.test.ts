import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { launcherPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { mountsOf } from '../../helpers/leftovers.js';
import { lxcfsFiles, LXCFS_VIEWS } from '../../../lib/host/lxcfs.js';
import { findTool } from '../../../lib/util/exec.js';

/**
 * tslxc's own lxcfs (lib/host/lxcfs.ts): started by the first start, at this installation's run
 * dir, its views bound over /proc inside; a restart after its death re-binds running containers.
 */
if (requireRoot(test)) {
  const env = new TestEnv('lxcfs', { lxcfs: true });
  const without = new TestEnv('nolxcfs');
  const have = !!findTool('lxcfs');
  const f = lxcfsFiles(env.paths);
  const lxcfsPid = () => Number(fs.readFileSync(f.pid, 'utf8').trim());
  const hostMemTotal = () => /MemTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1];
  const memTotal = (e: TestEnv, t: ExecutionContext, name: string) => /MemTotal:\s+(\d+) kB/.exec(e.ok(t, ['exec', name, '--', 'cat', '/proc/meminfo']))?.[1];
  const info = (e: TestEnv, t: ExecutionContext, name: string) => /^lxcfs: (.*)$/m.exec(e.ok(t, ['info', name]))?.[1] ?? '';
  /** The helper's start without node (bin/tslxc replays the plan), or a failure if it needed node. */
  const nativeStart = (name: string) => {
    const fake = path.join(env.root, 'fakenode');
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, 'node'), '#!/bin/sh\nexit 99\n', { mode: 0o755 });
    return spawnSync(launcherPath, ['start', name], { env: { ...env.env, PATH: `${fake}:${env.env.PATH}` }, encoding: 'utf8' });
  };

  test.before(() => {
    for (const e of [env, without]) {
      const r = e.cli(['image', 'build', 'busybox']);
      if (r.code !== 0) throw new Error(r.stderr);
    }
  });
  test.serial.after.always('the installation without lxcfs goes', () => without.cleanup());
  leftoverHooks(test, env);

  test.serial('the first start runs lxcfs; /proc inside shows the limits (unprivileged)', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    env.ok(t, ['create', 'busybox', 'lx1', '-c', 'limits.memory=256MiB', '-c', 'limits.cpu=1']);
    t.regex(env.ok(t, ['host']), /lxcfs: installed; started with the first container/);
    const before = Date.now();
    env.ok(t, ['start', 'lx1']);
    t.true(fs.existsSync(f.pid), 'lxcfs wrote its pid file');
    t.is(memTotal(env, t, 'lx1'), '262144');
    // limits.cpu=1 pins it to one CPU: cpuinfo lists that one, nproc and cpu/online agree.
    const procs = env.ok(t, ['exec', 'lx1', '--', 'cat', '/proc/cpuinfo']).match(/^processor\s*:/gm) ?? [];
    t.is(procs.length, 1);
    t.is(env.ok(t, ['exec', 'lx1', '--', 'nproc']).trim(), '1');
    const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(env.ok(t, ['exec', 'lx1', '--', 'cat', '/proc/self/status']))![1];
    t.is(env.ok(t, ['exec', 'lx1', '--', 'cat', '/sys/devices/system/cpu/online']).trim(), allowed);
    // Its uptime counts from its start, not the host's boot.
    const up = Number(env.ok(t, ['exec', 'lx1', '--', 'cat', '/proc/uptime']).split(' ')[0]);
    t.true(up >= 0 && up <= (Date.now() - before) / 1000 + 1, `uptime ${up}`);
    t.true(Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) > up);
    // Unprivileged: lxcfs's files are host root's (nobody inside), readable through allow_other.
    t.is(env.ok(t, ['exec', 'lx1', '--', 'sh', '-c', 'cat /proc/loadavg /proc/stat /proc/swaps /proc/diskstats >/dev/null && echo ok']).trim(), 'ok');
    t.regex(info(env, t, 'lx1'), /^bound over \/proc\/cpuinfo .*\/sys\/devices\/system\/cpu\/online: /);
    t.regex(env.ok(t, ['host']), /lxcfs: running \(/);
  });

  test.serial("Debian's free, nproc, uptime and top show the limits", (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    env.ok(t, ['launch', 'debian', 'deb1', '-c', 'limits.memory=256MiB', '-c', 'limits.cpu=1']);
    // procps and coreutils, which read /proc (busybox's free asks sysinfo(2), which lxcfs cannot change).
    t.regex(env.ok(t, ['exec', 'deb1', '--', 'free', '-m']), /Mem:\s+256\s/);
    t.is(env.ok(t, ['exec', 'deb1', '--', 'nproc']).trim(), '1');
    t.regex(env.ok(t, ['exec', 'deb1', '--', 'uptime']), /up\s+(0 min|\d+ sec)/);
    const top = env.ok(t, ['exec', 'deb1', '--', 'top', '-b', '-n', '1']);
    t.regex(top, /MiB Mem :\s+256\.0 total/);
    t.regex(top, /up\s+(0 min|\d+ sec)/);
    env.ok(t, ['delete', '--force', 'deb1']);
  });

  test.serial('its mount stays private to the host namespace and the run dir', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    const here = mountsOf(env).filter((l) => l.split(' ')[4] === f.dir);
    t.is(here.length, 2, 'a private bind of the dir, lxcfs on it');
    for (const l of here) t.notRegex(l.split(' - ')[0], /shared:|master:/);
    t.regex(here[1], / - fuse\.lxcfs /);
  });

  test.serial('a privileged container gets the same views', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    env.ok(t, ['launch', 'busybox', 'lx2', '-c', 'security.privileged=true', '-c', 'limits.memory=128MiB']);
    t.is(memTotal(env, t, 'lx2'), '131072');
  });

  test.serial('a replayed start (no node) binds the same views', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    // The installation's first start is not replayable (it made the cgroup prefix): one more.
    env.ok(t, ['stop', 'lx1']);
    env.ok(t, ['start', 'lx1']);
    env.ok(t, ['stop', 'lx1']);
    const r = nativeStart('lx1');
    t.is(r.status, 0, `started without node: ${r.stderr}`);
    t.is(memTotal(env, t, 'lx1'), '262144');
  });

  test.serial('lxcfs killed: info says so; the next start restarts it and re-binds running containers', async (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    env.ok(t, ['launch', 'busybox', 'lx5']);
    const initOf = (name: string) => /^PID: (\d+)$/m.exec(env.ok(t, ['info', name]))?.[1];
    const pid5 = initOf('lx5');
    const old = lxcfsPid();
    process.kill(old, 'SIGKILL');
    for (let i = 0; i < 200 && fs.existsSync(`/proc/${old}`); i++) await new Promise((r) => setTimeout(r, 10));
    const dead = env.cli(['exec', 'lx1', '--', 'cat', '/proc/meminfo']);
    t.not(dead.code, 0);
    t.regex(dead.stderr + dead.stdout, /Transport endpoint is not connected/);
    t.regex(info(env, t, 'lx1'), /^died: /);
    // A reboot meanwhile (the monitor binds again) boots with the host's files rather than failing.
    env.cli(['exec', 'lx5', '--', 'reboot']);
    for (let i = 0; i < 300 && (initOf('lx5') === pid5 || env.cli(['exec', 'lx5', '--', 'true']).code !== 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    t.not(initOf('lx5'), pid5, 'lx5 rebooted');
    t.is(memTotal(env, t, 'lx5'), hostMemTotal());
    // The plan recorded the live mount: this start goes through TypeScript, which restarts lxcfs.
    env.ok(t, ['launch', 'busybox', 'lx3', '-c', 'limits.memory=64MiB']);
    t.not(lxcfsPid(), old);
    t.is(memTotal(env, t, 'lx3'), '65536');
    t.is(memTotal(env, t, 'lx1'), '262144', 'lx1 reads from the new lxcfs');
    t.is(memTotal(env, t, 'lx2'), '131072', 'so does the privileged lx2');
    // Re-bound in place, nothing stacked on the dead mounts.
    const views = env
      .ok(t, ['exec', 'lx1', '--', 'cat', '/proc/self/mountinfo'])
      .split('\n')
      .filter((l) => l.includes('fuse.lxcfs'))
      .map((l) => l.split(' ')[4]);
    t.deepEqual([...views].sort(), [...LXCFS_VIEWS].sort());
    t.regex(info(env, t, 'lx1'), /^bound over /);
    t.regex(info(env, t, 'lx5'), /^not bound/);
    env.ok(t, ['delete', '--force', 'lx2', 'lx3', 'lx5']);
  });

  test.serial('security.lxcfs=false: the host figures, from a profile or the container', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    env.ok(t, ['profile', 'create', 'nolxcfs']);
    env.ok(t, ['profile', 'set', 'nolxcfs', 'security.lxcfs=false']);
    env.ok(t, ['launch', 'busybox', 'lx4', '-p', 'default', '-p', 'nolxcfs', '-c', 'limits.memory=64MiB']);
    t.is(memTotal(env, t, 'lx4'), hostMemTotal());
    t.regex(info(env, t, 'lx4'), /^off \(security\.lxcfs=false\)/);
    env.ok(t, ['delete', '--force', 'lx4']);
    t.not(env.cli(['config', 'set', 'lx1', 'security.lxcfs=maybe']).code, 0);
  });

  test.serial('admin lxcfs stop: refused while a running container has its views, then stops it; the next start runs it again', (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    // Ended: gone, or a zombie its parent (this host's init) has not reaped yet.
    const alive = (pid: number) => {
      try {
        return !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const pid = lxcfsPid();
    t.regex(env.ok(t, ['host']), /lxcfs: running \(.*\), bound over \/proc files in 1 running container$/m);
    const refused = env.cli(['admin', 'lxcfs', 'stop']);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /^Error: Cannot stop lxcfs: running containers have its views bound over their \/proc files: lx1 \(stop them first/);
    t.true(alive(pid), 'still running');
    t.is(memTotal(env, t, 'lx1'), '262144');
    env.ok(t, ['stop', 'lx1']);
    t.regex(env.ok(t, ['host']), /lxcfs: running \(.*\), used by no running container \("tslxc admin lxcfs stop" stops it\)/);
    t.is(env.ok(t, ['admin', 'lxcfs', 'stop']).trim(), 'lxcfs stopped');
    t.false(alive(pid), 'its process ended');
    t.false(fs.existsSync(f.pid));
    t.false(
      mountsOf(env).some((l) => l.split(' ')[4] === f.dir),
      'its mount and the private bind are gone',
    );
    t.regex(env.ok(t, ['host']), /lxcfs: installed; started with the first container/);
    t.is(env.ok(t, ['admin', 'lxcfs', 'stop']).trim(), 'lxcfs is not running');
    // Its start plan recorded the mount: this start goes through TypeScript, which starts lxcfs.
    env.ok(t, ['start', 'lx1']);
    t.not(lxcfsPid(), pid);
    t.is(memTotal(env, t, 'lx1'), '262144');
  });

  test.serial("admin lxcfs stop between a start's check and its binds: the start binds a running lxcfs", async (t) => {
    if (!have) return t.pass('lxcfs is not installed');
    // No container uses lxcfs, so a stop in that window goes through.
    env.ok(t, ['stop', 'lx1']);
    const gate = path.join(env.root, 'pause-start');
    const launching = spawn(launcherPath, ['launch', 'busybox', 'lx6', '-c', 'limits.memory=96MiB'], {
      env: { ...env.env, TSLXC_TEST_PAUSE_AT: 'start-lxcfs-checked', TSLXC_TEST_PAUSE_FILE: gate },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    launching.stderr.on('data', (d) => (stderr += d));
    const ended = new Promise<number | null>((resolve) => launching.on('close', resolve));
    for (let i = 0; i < 1200 && !fs.existsSync(gate); i++) await new Promise((r) => setTimeout(r, 50));
    t.true(fs.existsSync(gate), 'the start reached the point after its lxcfs check');
    const old = lxcfsPid();
    t.is(env.ok(t, ['admin', 'lxcfs', 'stop']).trim(), 'lxcfs stopped');
    fs.rmSync(gate);
    t.is(await ended, 0, stderr);
    t.is(memTotal(env, t, 'lx6'), '98304', 'its views read from a live lxcfs');
    t.not(lxcfsPid(), old);
    t.regex(info(env, t, 'lx6'), /^bound over /);
    // And from now on a stop sees it.
    t.not(env.cli(['admin', 'lxcfs', 'stop']).code, 0);
    env.ok(t, ['delete', '--force', 'lx6']);
  });

  test.serial('without lxcfs installed the container starts as before and info says so', (t) => {
    without.ok(t, ['launch', 'busybox', 'nl1', '-c', 'limits.memory=64MiB']);
    t.is(memTotal(without, t, 'nl1'), hostMemTotal());
    t.regex(info(without, t, 'nl1'), /^not installed on the host/);
    t.regex(without.ok(t, ['host']), /lxcfs: not installed/);
    t.false(fs.existsSync(lxcfsFiles(without.paths).pid));
    t.false(mountsOf(without).some((l) => l.includes('fuse.lxcfs')));
    without.ok(t, ['delete', '--force', 'nl1']);
  });
}
