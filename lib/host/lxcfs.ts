import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { listNames } from '../state/config.js';
import { runHelper, helperError } from '../state/helper.js';
import { locksDir, type Paths } from '../state/paths.js';
import { liveness } from '../state/runtime.js';
import { TslxcError } from '../errors.js';
import { findTool } from '../util/exec.js';
import { mkdirp, sleep } from '../util/fs.js';
import { lockHeld, withLock } from '../util/lock.js';
import { endProcesses, processFromPidFile } from '../util/proc.js';

/**
 * tslxc's own lxcfs, as LXD runs one for its containers. There is no service manager to lean on,
 * so a start that finds it not running starts it (as dnsmasq for a network). Its files live in
 * TSLXC_RUN_DIR:
 *   lxcfs/      the FUSE mount, on a private bind of the dir itself, so that neither the mount
 *               nor its death propagates to any other mount namespace (a shared /run would)
 *   lxcfs.pid   written by lxcfs
 *   lxcfs.log   its output (there is no syslog on every host)
 * A test installation has its own run dir, hence its own lxcfs. TSLXC_LXCFS_BIN names the binary
 * (a path that does not exist: tslxc behaves as on a host without lxcfs).
 */
export const lxcfsFiles = (p: Paths) => ({
  dir: path.join(p.runDir, 'lxcfs'),
  pid: path.join(p.runDir, 'lxcfs.pid'),
  log: path.join(p.runDir, 'lxcfs.log'),
});

/** The files lxcfs renders from the reader's cgroup, bound over the container's own (as LXC does). */
export const LXCFS_VIEWS = [
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/loadavg',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/sys/devices/system/cpu/online',
] as const;

export function lxcfsBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const set = env.TSLXC_LXCFS_BIN;
  if (set === undefined || set === '') return findTool('lxcfs');
  try {
    fs.accessSync(set, fs.constants.X_OK);
    return set;
  } catch {
    return undefined;
  }
}

export type LxcfsState = 'running' | 'dead' | 'stopped' | 'not installed';

/** [mount point, filesystem type, device (MAJOR:MINOR)] of each mount a process sees. */
function mountinfo(pid: number | 'self' = 'self'): string[][] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [pre, post = ''] = l.split(' - ');
        const f = pre.split(' ');
        return [f[4] ?? '', post.split(' ')[0] ?? '', f[2] ?? ''];
      });
  } catch {
    return [];
  }
}

/** An lxcfs FUSE mount is at DIR (alive or not: a dead one fails every read with ENOTCONN). */
export function lxcfsMounted(dir: string, mounts = mountinfo()): boolean {
  return mounts.some(([at, type]) => at === dir && type === 'fuse.lxcfs');
}

function ourProcess(p: Paths): number | undefined {
  const f = lxcfsFiles(p);
  return processFromPidFile(f.pid, 'lxcfs', f.dir);
}

/** Running: our process is alive and its mount is there. Dead: either is left without the other. */
export function lxcfsState(p: Paths): LxcfsState {
  const f = lxcfsFiles(p);
  const mounted = lxcfsMounted(f.dir);
  const pid = ourProcess(p);
  if (mounted && pid) return 'running';
  if (mounted || pid) return 'dead';
  return lxcfsBinary() ? 'stopped' : 'not installed';
}

/**
 * Make sure our lxcfs runs, before a container that uses it starts; false when it cannot (not
 * installed, or it failed to start: a warning, and the container starts with the host's /proc
 * as it would without lxcfs). A restart re-binds the views of the running containers, whose
 * binds still point at the old, dead mount.
 */
export async function ensureLxcfs(p: Paths): Promise<boolean> {
  if (lxcfsState(p) === 'running') return true;
  const bin = lxcfsBinary();
  if (!bin) return false;
  return withLock(
    locksDir(p),
    'lxcfs',
    async () => {
      if (lxcfsState(p) === 'running') return true;
      await stopLxcfs(p, { keepDir: true });
      const why = await startLxcfs(p, bin);
      if (why) {
        process.stderr.write(`Warning: lxcfs did not start (${why}): /proc inside shows the host's figures; see ${lxcfsFiles(p).log}\n`);
        return false;
      }
      await rebindRunning(p);
      return true;
    },
    { purpose: 'lxcfs', timeoutMs: 60_000 },
  );
}

/** Starts lxcfs on its private mount point; undefined once its mount is up, else why not. */
async function startLxcfs(p: Paths, bin: string): Promise<string | undefined> {
  const f = lxcfsFiles(p);
  mkdirp(f.dir, 0o755);
  if (!mountinfo().some(([at]) => at === f.dir)) {
    for (const args of [
      ['--bind', f.dir, f.dir],
      ['--make-private', f.dir],
    ]) {
      const r = spawnSync(findTool('mount') ?? 'mount', args, { encoding: 'utf8' });
      if (r.status !== 0) return `mount ${args.join(' ')}: ${(r.stderr || `exit ${r.status}`).trim()}`;
    }
  }
  const log = fs.openSync(f.log, 'a', 0o600);
  // Its own session, output to its log, cwd /: it outlives the command that started it.
  const child = spawn(bin, ['-p', f.pid, f.dir], { detached: true, cwd: '/', stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let ended: string | undefined;
  child.on('error', (e) => (ended = e.message));
  child.on('exit', (code, sig) => (ended = sig ? `killed by ${sig}` : `exit ${code}`));
  child.unref();
  const deadline = Date.now() + 10_000;
  for (let delay = 2; Date.now() < deadline && !ended; delay = Math.min(delay * 2, 50)) {
    if (lxcfsMounted(f.dir) && ourProcess(p)) return undefined;
    await sleep(delay);
  }
  if (!ended && child.pid) process.kill(child.pid, 'SIGKILL');
  return ended ?? 'its mount did not appear within 10 s';
}

/**
 * Stop our lxcfs and take its mount away (the private bind under it too, unless keepDir). Only
 * for tests and a restart: running containers' views fail while it is gone.
 */
export async function stopLxcfs(p: Paths, opts: { keepDir?: boolean } = {}): Promise<void> {
  const f = lxcfsFiles(p);
  await endProcesses('lxcfs', f.dir);
  const umount = findTool('umount') ?? 'umount';
  for (let i = 0; i < 8; i++) {
    const here = mountinfo().filter(([at]) => at === f.dir);
    const top = here.at(-1);
    if (!top || (opts.keepDir && top[1] !== 'fuse.lxcfs')) break;
    spawnSync(umount, ['-l', f.dir], { stdio: 'ignore' });
  }
  fs.rmSync(f.pid, { force: true });
}

/** The running containers that have lxcfs's views bound (read from their mountinfo). */
export function lxcfsUsers(p: Paths): string[] {
  return listNames(p).filter((name) => {
    const live = liveness(p, name);
    const pid = live.initAlive ? live.files.init?.pid : undefined;
    return !!pid && lxcfsViewsIn(pid).length > 0;
  });
}

/**
 * `tslxc admin lxcfs stop`: LXD keeps its lxcfs running as a service, and so does tslxc once a
 * container started it; this stops it (and takes its mount away) when no running container has
 * its views bound, since theirs would fail with "Transport endpoint is not connected" until
 * they restart. Under the lock a start takes to start it. The next start of a container with
 * security.lxcfs on starts it again (its start plan, which recorded the mount, no longer holds).
 * Returns false when it was not running.
 */
export async function stopUnusedLxcfs(p: Paths): Promise<boolean> {
  return withLock(
    locksDir(p),
    'lxcfs',
    async () => {
      const users = lxcfsUsers(p);
      if (users.length) {
        const shown = users.length > 5 ? `${users.slice(0, 5).join(', ')} and ${users.length - 5} more` : users.join(', ');
        throw new TslxcError(
          'Cannot stop lxcfs',
          `running containers have its views bound over their /proc files: ${shown}`,
          'stop them first, or set security.lxcfs=false on them and restart them',
          { kind: 'conflict' },
        );
      }
      const state = lxcfsState(p);
      if (state === 'stopped' || state === 'not installed') return false;
      await stopLxcfs(p);
      return true;
    },
    { purpose: 'lxcfs', timeoutMs: 60_000 },
  );
}

/** The lxcfs views bound in a running container (by its init's pid), from its mountinfo. */
export function lxcfsViewsIn(pid: number): string[] {
  const views = new Set<string>(LXCFS_VIEWS);
  return [
    ...new Set(
      mountinfo(pid)
        .filter(([at, type]) => type === 'fuse.lxcfs' && views.has(at))
        .map(([at]) => at),
    ),
  ];
}

/**
 * After a restart: every running container's views are bound again, from the new mount, in its
 * mount namespace (the helper's disk mode, as a hotplugged disk). A container that stops
 * meanwhile is skipped; one that cannot be re-bound is named in a warning.
 */
async function rebindRunning(p: Paths): Promise<void> {
  const jobs = listNames(p).map(async (name) => {
    const live = liveness(p, name);
    const pid = live.initAlive ? live.files.init?.pid : undefined;
    if (pid) await bindViews(p, name, pid, lxcfsViewsIn(pid));
  });
  await Promise.all(jobs);
}

/** Binds VIEWS in a running container from the current mount, each in place of what is bound there. */
async function bindViews(p: Paths, name: string, pid: number, views: readonly string[]): Promise<void> {
  const dir = lxcfsFiles(p).dir;
  const bound = new Set(lxcfsViewsIn(pid));
  for (const view of views) {
    for (const args of [
      ...(bound.has(view) ? [['disk', '--pid', String(pid), '--remove', view]] : []),
      ['disk', '--pid', String(pid), '--add', `${dir}${view}:${view}`],
    ]) {
      const r = await runHelper(args);
      if (r.code !== 0) {
        if (liveness(p, name).initAlive) process.stderr.write(`Warning: cannot bind lxcfs's ${view} again in "${name}": ${helperError(r.stderr)}\n`);
        return;
      }
    }
  }
}

/** The views this lxcfs serves (a view the running kernel lacks, e.g. no swaps, is not bound). */
export function lxcfsViews(p: Paths): string[] {
  const dir = lxcfsFiles(p).dir;
  return LXCFS_VIEWS.filter((v) => fs.existsSync(`${dir}${v}`));
}

/**
 * After a start bound lxcfs's views (VIEWS) in a container (init PID). `admin lxcfs stop` takes
 * the lxcfs lock and refuses while a running container has the views bound, but a start between
 * its check (ensureLxcfs) and its binds is not one yet: a stop then could end lxcfs under it,
 * leaving the container views that fail ("Transport endpoint is not connected") or none at all.
 * So the start looks again once they are bound: with no stop under way (the lock free), lxcfs
 * running and every view bound from that very mount, any later stop sees the container and
 * refuses. Otherwise, under the lock, lxcfs is started again if it must be, and the container's
 * views are bound from it.
 */
export async function lxcfsAfterBind(p: Paths, name: string, pid: number, views: readonly string[]): Promise<void> {
  if (!views.length) return;
  if (!lockHeld(locksDir(p), 'lxcfs') && viewsLive(p, pid, views)) return;
  const bin = lxcfsBinary();
  if (!bin) return;
  await withLock(
    locksDir(p),
    'lxcfs',
    async () => {
      if (viewsLive(p, pid, views)) return;
      if (lxcfsState(p) !== 'running') {
        await stopLxcfs(p, { keepDir: true });
        const why = await startLxcfs(p, bin);
        if (why) {
          process.stderr.write(`Warning: lxcfs did not start (${why}): /proc inside "${name}" shows the host's figures; see ${lxcfsFiles(p).log}\n`);
          return;
        }
        await rebindRunning(p);
      }
      if (!viewsLive(p, pid, views)) await bindViews(p, name, pid, views);
    },
    { purpose: 'lxcfs', timeoutMs: 60_000 },
  );
}

/** lxcfs runs, and each of VIEWS is bound in the container (init PID) from its current mount. */
function viewsLive(p: Paths, pid: number, views: readonly string[]): boolean {
  if (lxcfsState(p) !== 'running') return false;
  const dev = mountinfo()
    .filter(([at, type]) => at === lxcfsFiles(p).dir && type === 'fuse.lxcfs')
    .at(-1)?.[2];
  const inside = mountinfo(pid);
  return !!dev && views.every((v) => inside.filter(([at]) => at === v).at(-1)?.[2] === dev);
}

/**
 * The helper's --bind options for lxcfs's views (lxcfsViews). Optional: a reboot (the monitor
 * binds them again) while lxcfs is dead boots with the host's files, as LXC's lxcfs hook skips
 * them, rather than failing.
 */
export function lxcfsBindArgs(p: Paths, views: readonly string[]): string[] {
  const dir = lxcfsFiles(p).dir;
  return views.flatMap((v) => ['--bind', `${dir}${v}:${v}:optional`]);
}
