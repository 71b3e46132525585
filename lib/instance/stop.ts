import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { containerConfigFile, containerRunDir, freezeMarkerFile, RUN_FILES, type Paths } from '../state/paths.js';
import { sleep } from '../util/fs.js';
import { isAlive } from '../util/proc.js';
import { signalNumber } from '../util/signals.js';
import { loadConfig, type InstanceConfig } from '../state/config.js';
import { instanceLockFile, type Context } from '../state/context.js';
import { clearRuntime, CLEARED_RUN_FILES, liveness, type RuntimeFiles } from '../state/runtime.js';
import { devicesStopping, releaseDevices } from '../device/cleanup.js';
import { cgroupsOf } from '../cgroup/context.js';

export interface StopOptions {
  force?: boolean;
  /** seconds to wait for a clean shutdown before killing everything (default 30) */
  timeout?: number;
}

const DEFAULT_TIMEOUT_S = 30;

/**
 * What `tslxc stop NAME` needs to stop this boot without node (native/clistop.c), one item a
 * line: the stop signal's number, the timeout in ms, the container's lock, its config and that
 * config's "INODE MTIME_NS" (a config written since, by any means, sends the stop to node), the
 * freeze marker (a recovery is node's work), then the run files a stop clears. Node's start-up
 * would otherwise delay the signal, and with it the whole guest shutdown. What the devices hold is
 * then released by the monitor's post-stop hook, as after a poweroff inside (the network's, today
 * the one handler with a stop hook): a handler whose stop no hook does must keep this file away.
 */
export const STOP_ARGS_FILE = RUN_FILES.stopArgs;

/** The stop args file as data (the start spec writes it); no data: a path with a newline. */
export function stopArgsRunFile(p: Paths, cfg: InstanceConfig): { path: string; mode: number; data?: string } {
  const config = containerConfigFile(p, cfg.name);
  const st = fs.statSync(config, { bigint: true });
  const dir = containerRunDir(p, cfg.name);
  // An ephemeral container's stop deletes it (lib/instance/ephemeral.ts): node's work.
  if (cfg.ephemeral) return { path: path.join(dir, STOP_ARGS_FILE), mode: 0o600 };
  const lines = [
    String(signalNumber(cfg.stop_signal)),
    String(DEFAULT_TIMEOUT_S * 1000),
    instanceLockFile(p, cfg.name),
    config,
    `${st.ino} ${st.mtimeNs}`,
    freezeMarkerFile(p, cfg.name),
    ...CLEARED_RUN_FILES.map((f) => path.join(dir, f)),
  ];
  const file = path.join(dir, STOP_ARGS_FILE);
  // A path with a newline cannot be one line: such a container stops through node.
  if (lines.some((l) => l.includes('\n'))) return { path: file, mode: 0o600 };
  return { path: file, mode: 0o600, data: `${lines.join('\n')}\n` };
}

export async function stopInstance(ctx: Context, name: string, opts: StopOptions = {}): Promise<void> {
  return ctx.withInstanceLock(name, () => stopLocked(ctx, name, opts));
}

/**
 * Ask init to shut down with the image's stop signal; after the timeout (or at once with --force)
 * SIGKILL init, which takes the whole pid namespace with it, then sweep the cgroup. The monitor
 * notices init's end and cleans up; if the monitor itself was killed, we clean up in its place.
 */
export async function stopLocked(ctx: Context, name: string, opts: StopOptions = {}): Promise<void> {
  if (opts.timeout !== undefined && !(Number.isFinite(opts.timeout) && opts.timeout >= 0)) {
    throw new TslxcError(`Invalid --timeout "${opts.timeout}"`, 'it must be a number of seconds, 0 or more');
  }
  const cfg = loadConfig(ctx.paths, name);
  const live = liveness(ctx.paths, name);
  if (!live.initAlive && !live.monitorAlive) {
    if (live.leftovers) {
      await cleanupDead(ctx, name, live.files);
      return;
    }
    throw new TslxcError(`Container "${name}" is not running`);
  }
  const cg = await cgroupsOf(ctx);
  if ((await cg.state(name).catch(() => 'thawed')) === 'frozen') await cg.thaw(name);

  const gone = () => !isAlive(live.files.monitor) && !isAlive(live.files.init);
  // cleanupDead below releases what the devices hold (the network): the monitor's hook need not.
  if (live.monitorAlive) devicesStopping(ctx, name, live.files.monitor!.pid);
  const timeoutMs = (opts.timeout ?? DEFAULT_TIMEOUT_S) * 1000;
  if (!opts.force && live.initAlive) {
    signal(live.files.init!.pid, signalNumber(cfg.stop_signal));
    await waitFor(gone, timeoutMs);
  }
  if (!gone()) {
    if (isAlive(live.files.init)) signal(live.files.init!.pid, 9);
    await cg.killAll(name);
    // The monitor sees init die and cleans up; give it a moment, then do its job if it cannot.
    if (!(await waitFor(gone, 5000)) && isAlive(live.files.monitor)) {
      signal(live.files.monitor!.pid, 9);
      await waitFor(gone, 2000);
    }
  }
  // The config is not written: it says only whether the container was ever started, and a
  // config left as it was keeps the start plan valid (plan.ts).
  await cleanupDead(ctx, name, live.files);
}

/**
 * What a monitor does when a container ends, for when the monitor is gone (and, idempotently,
 * after it): cgroups, network pieces on the host, pid files.
 */
export async function cleanupDead(ctx: Context, name: string, files: RuntimeFiles): Promise<void> {
  const cg = await cgroupsOf(ctx);
  await cg.remove(name);
  await releaseDevices(ctx, name);
  clearRuntime(files);
}

function signal(pid: number, sig: number): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  let delay = 2;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
  return true;
}
