import type { Context } from '../state/context.js';
import { listNames, loadConfig } from '../state/config.js';
import { liveness } from '../state/runtime.js';
import { stopLocked, type StopOptions } from './stop.js';

/**
 * Ephemeral containers (LXD's `ephemeral: true`, `launch -e`) are deleted when they stop. tslxc has
 * no daemon to see a container stop by itself (a poweroff inside): a stop through tslxc deletes it
 * at once, under the lock the stop holds; one that ended by itself is deleted by the next sweep
 * (`tslxc serve` runs one each minute, as LXD's tasks do; without a server it stays, stopped).
 */

/** stop; an ephemeral container is then deleted under the same lock, so nothing can start it between. */
export async function stopInstance(ctx: Context, name: string, opts: StopOptions = {}): Promise<{ deleted: boolean }> {
  return ctx.withInstanceLock(name, async () => {
    await stopLocked(ctx, name, opts);
    if (!loadConfig(ctx.paths, name).ephemeral) return { deleted: false };
    // Loaded only for an ephemeral one: a plain stop (a hot path) does not pay for the delete's modules.
    await (await import('./manage.js')).deleteLocked(ctx, name);
    return { deleted: true };
  });
}

/** Whether a container config says ephemeral and it has run (one never started is kept). */
function ended(ctx: Context, name: string): boolean {
  let cfg;
  try {
    cfg = loadConfig(ctx.paths, name);
  } catch {
    return false;
  }
  if (!cfg.ephemeral || cfg.status === 'created' || cfg.status === 'creating') return false;
  const live = liveness(ctx.paths, name);
  return !live.initAlive && !live.monitorAlive;
}

/** Deletes the ephemeral containers that stopped by themselves; returns their names. */
export async function sweepEphemeral(ctx: Context, names: string[] = listNames(ctx.paths)): Promise<string[]> {
  const deleted: string[] = [];
  for (const name of names) {
    if (!ended(ctx, name)) continue;
    // Checked again under the lock: a start may have come between.
    const gone = await ctx
      .withInstanceLock(name, async () => {
        if (!ended(ctx, name)) return false;
        await (await import('./manage.js')).deleteLocked(ctx, name);
        return true;
      })
      .catch(() => false);
    if (gone) deleted.push(name);
  }
  return deleted;
}
