import fs from 'node:fs';
import path from 'node:path';
import type { Context } from '../instance/context.js';
import { containerRunDir } from '../state/paths.js';
import { pidAlive } from '../util/proc.js';

/**
 * Freezing a running container around a copy of its root (snapshot, copy), and thawing one whose
 * freezer's process was killed. Apart from snapshot.ts so that status can thaw without it.
 */

export interface SnapshotTiming {
  /** How long the container's processes were frozen (0 when it was not running). */
  frozenMs: number;
}

const freezeMarker = (ctx: Context, name: string) => path.join(containerRunDir(ctx.paths, name), 'snapshot-freeze.pid');

/**
 * Runs fn with the running container frozen, and thaws it whatever happens. A marker in its run dir
 * lets whoever looks next thaw it if this process is killed meanwhile (thawAbandonedFreeze).
 */
export async function withFrozen<T>(ctx: Context, name: string, fn: () => Promise<T>, timing?: SnapshotTiming): Promise<T> {
  const cg = await ctx.cgroups();
  const t0 = Date.now();
  const marker = freezeMarker(ctx, name);
  fs.writeFileSync(marker, String(process.pid));
  try {
    await cg.freeze(name);
  } catch (err) {
    fs.rmSync(marker, { force: true });
    throw err;
  }
  try {
    return await fn();
  } finally {
    await cg.thaw(name);
    fs.rmSync(marker, { force: true });
    if (timing) timing.frozenMs = Date.now() - t0;
  }
}

/**
 * A container left frozen by a snapshot whose process was killed mid-copy: thawed (status calls
 * this when it finds a frozen container). True when it did thaw.
 */
export async function thawAbandonedFreeze(ctx: Context, name: string): Promise<boolean> {
  const marker = freezeMarker(ctx, name);
  let pid: number;
  try {
    pid = Number(fs.readFileSync(marker, 'utf8'));
  } catch {
    return false;
  }
  if (pid && pidAlive(pid)) return false;
  await (await ctx.cgroups()).thaw(name);
  fs.rmSync(marker, { force: true });
  return true;
}
