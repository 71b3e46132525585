import { TslxcError } from '../errors.js';
import { sleep } from '../util/fs.js';
import { isAlive } from '../util/proc.js';
import { signalNumber } from '../util/signals.js';
import { loadConfig } from './config.js';
import type { Context } from './context.js';
import { clearRuntime, liveness, type RuntimeFiles } from './runtime.js';
import { devicesStopping, releaseDevices } from '../device/cleanup.js';

export interface StopOptions {
  force?: boolean;
  /** seconds to wait for a clean shutdown before killing everything (default 30) */
  timeout?: number;
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
  const cg = await ctx.cgroups();
  if ((await cg.state(name).catch(() => 'thawed')) === 'frozen') await cg.thaw(name);

  const gone = () => !isAlive(live.files.monitor) && !isAlive(live.files.init);
  // cleanupDead below releases what the devices hold (the network): the monitor's hook need not.
  if (live.monitorAlive) devicesStopping(ctx, name, live.files.monitor!.pid);
  const timeoutMs = (opts.timeout ?? 30) * 1000;
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
  const cg = await ctx.cgroups();
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
