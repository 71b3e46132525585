import { pidAlive } from '../util/proc.js';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { configWritten, loadConfig, type InstanceConfig } from '../state/config.js';
import { instanceState } from './status.js';
import { containerDir, freezeMarkerFile } from '../state/paths.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { target } from '../storage/instance.js';
import { driverOf } from '../storage/driver.js';
import { commitRenames, finalEntries, finalPath, readJournal } from '../state/journal.js';
import { crashPoint } from '../util/crash.js';
import { expiryAfter } from '../config/expiry.js';
import { expandInstance } from '../profile/expand.js';
import type { RootSwap } from '../storage/drivers/types.js';
import { cgroupsOf } from '../cgroup/context.js';

/**
 * Snapshots: INSTANCE_DIR/snapshots/SNAP/{config.yaml, snapshot.yaml} plus the driver's data
 * (dir/overlay: rootfs/ beside them; btrfs: a read-only subvolume in the pool). A snapshot is made
 * in a temp dir and renamed into place last, so a crash leaves none or all. A running container is
 * frozen (cgroup freezer) for the copy only and thawed whatever happens; a paused one stays paused.
 */
const SNAP = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/i;
export function validateSnapshotName(s: string): string {
  if (!SNAP.test(s)) throw new TslxcError(`Invalid snapshot name "${s.slice(0, 70)}"`, 'use letters, digits, ".", "_" and "-"');
  return s;
}

export const snapshotsDir = (ctx: Context, name: string) => path.join(containerDir(ctx.paths, name), 'snapshots');
export const snapshotDir = (ctx: Context, name: string, snap: string) => path.join(snapshotsDir(ctx, name), validateSnapshotName(snap));

export interface SnapshotInfo {
  name: string;
  created_at: string;
  /** When it is deleted by itself (RFC 3339); absent: never. */
  expires_at?: string;
}

/**
 * The snapshots as committed, read without writing: a snapshot or a snapshot rename a killed tslxc
 * committed shows as done (journal.ts); the next command that takes the lock finishes it.
 */
export function listSnapshots(ctx: Context, name: string): SnapshotInfo[] {
  loadConfig(ctx.paths, name);
  return snapshotsOf(ctx, name);
}

/** listSnapshots of a container the caller has just read (a list): its config is not read again. */
export function snapshotsOf(ctx: Context, name: string): SnapshotInfo[] {
  const dir = snapshotsDir(ctx, name);
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    /* none yet, unless a journal makes the first */
  }
  const journal = readJournal(containerDir(ctx.paths, name));
  return finalEntries(journal, dir, entries)
    .filter((e) => SNAP.test(e))
    .flatMap((e) => {
      const file = path.join(dir, e, 'snapshot.yaml');
      const now = journal ? finalPath(journal, file) : file;
      const info = now === undefined ? undefined : readYamlIfExists<SnapshotInfo>(now);
      // The dir's name is the snapshot's (a rename rewrites snapshot.yaml after its commit).
      return info ? [{ ...info, name: e }] : [];
    })
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}

async function requireStopped(ctx: Context, name: string, what: string): Promise<void> {
  const state = await instanceState(ctx, loadConfig(ctx.paths, name));
  if (state.status !== 'Stopped' && state.status !== 'Created') {
    throw new TslxcError(`Cannot ${what} "${name}"`, `it is ${state.status.toLowerCase()}`, `stop it first with "tslxc stop ${name}"`);
  }
}

export interface SnapshotTiming {
  /** How long the container's processes were frozen (0 when it was not running). */
  frozenMs: number;
}

export interface SnapshotOptions {
  /** When it expires: a time, null for never; absent: the container's `snapshots.expiry` from now. */
  expiresAt?: Date | null;
}

export async function createSnapshot(ctx: Context, name: string, snap?: string, timing?: SnapshotTiming, opts: SnapshotOptions = {}): Promise<string> {
  return ctx.withInstanceLock(name, async () => {
    const cfg = loadConfig(ctx.paths, name);
    const state = await instanceState(ctx, cfg);
    const expiresAt = opts.expiresAt !== undefined ? opts.expiresAt : expiryAfter(new Date(), expandInstance(ctx.paths, cfg).config['snapshots.expiry'] ?? '');
    if (!['Stopped', 'Created', 'Running', 'Frozen'].includes(state.status)) {
      throw new TslxcError(`Cannot snapshot "${name}"`, `it is in the ${state.status} state`, `"tslxc stop --force ${name}" first`);
    }
    const existing = new Set(listSnapshots(ctx, name).map((s) => s.name));
    let n = 0;
    while (!snap && existing.has(`snap${n}`)) n++;
    const sname = validateSnapshotName(snap ?? `snap${n}`);
    if (existing.has(sname) || fs.existsSync(snapshotDir(ctx, name, sname)))
      throw new TslxcError(`Snapshot "${name}/${sname}" already exists`, undefined, undefined, { kind: 'conflict' });
    const t = target(ctx, name);
    const d = driverOf(t.pool.driver);
    fs.mkdirSync(snapshotsDir(ctx, name), { recursive: true, mode: 0o700 });
    await sweepSnapshotTemps(ctx, name);
    // Built under a temp name (the driver's data too: a btrfs subvolume beside the others), then
    // renamed into place: one rename, or the data's and the dir's under a journal.
    const tmpName = `.tmp-${sname}-${process.pid}`;
    const tmp = path.join(snapshotsDir(ctx, name), tmpName);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o700 });
    let committed = false;
    try {
      fs.copyFileSync(path.join(t.instDir, 'config.yaml'), path.join(tmp, 'config.yaml'));
      if (state.status === 'Running') await withFrozen(ctx, name, () => d.snapshot(t, tmp, tmpName), timing);
      else await d.snapshot(t, tmp, tmpName);
      const info: SnapshotInfo = { name: sname, created_at: new Date().toISOString(), ...(expiresAt ? { expires_at: expiresAt.toISOString() } : {}) };
      writeYamlAtomic(path.join(tmp, 'snapshot.yaml'), info, 0o600);
      crashPoint('snapshot:built');
      const data = d.snapshotData(t, tmpName);
      const renames: Array<[string, string]> = data
        ? [
            [data, d.snapshotData(t, sname)!],
            [tmp, snapshotDir(ctx, name, sname)],
          ]
        : [[tmp, snapshotDir(ctx, name, sname)]];
      if (renames.length > 1) commitRenames(t.instDir, 'snapshot', renames);
      else fs.renameSync(tmp, snapshotDir(ctx, name, sname));
      committed = true;
    } finally {
      if (!committed) {
        await d.deleteSnapshot(t, tmp, tmpName).catch(() => {});
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    return sname;
  });
}

const freezeMarker = (ctx: Context, name: string) => freezeMarkerFile(ctx.paths, name);

/**
 * Runs fn with the running container frozen, and thaws it whatever happens. A marker in its run dir
 * lets the next operation that takes the container's lock thaw it if this process is killed
 * meanwhile (Context.withInstanceLock).
 */
export async function withFrozen<T>(ctx: Context, name: string, fn: () => Promise<T>, timing?: SnapshotTiming): Promise<T> {
  const cg = await cgroupsOf(ctx);
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

/** Temp dirs of snapshots whose process died (and, on btrfs, their data). */
async function sweepSnapshotTemps(ctx: Context, name: string): Promise<void> {
  const t = target(ctx, name);
  for (const e of fs.readdirSync(snapshotsDir(ctx, name))) {
    const m = /^\.tmp-(.+)-(\d+)$/.exec(e);
    if (!m || pidAlive(Number(m[2]))) continue;
    const dir = path.join(snapshotsDir(ctx, name), e);
    await driverOf(t.pool.driver)
      .deleteSnapshot(t, dir, e)
      .catch(() => {});
    // Before temp names for the data, a btrfs snapshot was made under its final name: an orphan there.
    if (!fs.existsSync(path.join(snapshotsDir(ctx, name), m[1], 'snapshot.yaml')))
      await driverOf(t.pool.driver)
        .deleteSnapshot(t, dir, m[1])
        .catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function requireSnapshot(ctx: Context, name: string, snap: string): string {
  const dir = snapshotDir(ctx, name, snap);
  if (!fs.existsSync(path.join(dir, 'snapshot.yaml')))
    throw new TslxcError(`Snapshot "${name}/${snap}" not found`, undefined, `see "tslxc snapshot list ${name}"`, { kind: 'not-found' });
  return dir;
}

/**
 * Puts the container back as it was at the snapshot: its root, then its config (config keys,
 * devices, profiles; the name, and a hostname that was the name, stay today's). The new config is
 * written to a temp file first and renamed in right after the root's swap. A running container is
 * stopped for it and started again after it, as LXD does, all under one hold of its lock: no other
 * command can start, change or delete it between the steps.
 */
export async function restoreSnapshot(ctx: Context, name: string, snap: string, opts: { timeout?: number } = {}): Promise<{ restarted: boolean }> {
  return ctx.withInstanceLock(name, async () => {
    const cfg = loadConfig(ctx.paths, name);
    requireSnapshot(ctx, name, snap);
    const state = await instanceState(ctx, cfg);
    const running = state.status === 'Running' || state.status === 'Frozen';
    if (running) await (await import('./stop.js')).stopLocked(ctx, name, { timeout: opts.timeout });
    await restoreLocked(ctx, name, snap);
    if (running) await (await import('./start.js')).startLocked(ctx, name);
    return { restarted: running };
  });
}

async function restoreLocked(ctx: Context, name: string, snap: string): Promise<void> {
  await requireStopped(ctx, name, 'restore');
  const dir = requireSnapshot(ctx, name, snap);
  const t = target(ctx, name);
  const now = loadConfig(ctx.paths, name);
  const then = readYamlIfExists<InstanceConfig>(path.join(dir, 'config.yaml'));
  let tmpCfg: string | undefined;
  if (then) {
    const cfg: InstanceConfig = {
      ...then,
      name,
      status: now.status,
      created_at: now.created_at,
      hostname: then.hostname === then.name ? name : then.hostname,
    };
    if (now.last_used_at) cfg.last_used_at = now.last_used_at;
    tmpCfg = path.join(t.instDir, `.config-restore-${process.pid}.yaml`);
    writeYamlAtomic(tmpCfg, cfg, 0o600);
  }
  const d = driverOf(t.pool.driver);
  let swap: RootSwap;
  try {
    swap = await d.restore(t, dir, snap);
  } catch (err) {
    if (tmpCfg) fs.rmSync(tmpCfg, { force: true });
    throw err;
  }
  crashPoint('restore:built');
  // One commit for the root and the config: a crash from here on is finished by the next command
  // that takes the container's lock; reads see the restored state meanwhile.
  commitRenames(
    t.instDir,
    'restore',
    [...swap.renames, ...(tmpCfg ? [[tmpCfg, path.join(t.instDir, 'config.yaml')] as [string, string]] : [])],
    swap.leftovers,
  );
  crashPoint('restore:done');
  configWritten(ctx.paths, name, now, loadConfig(ctx.paths, name));
  await swap.discard();
}

/** The driver's data (btrfs: a subvolume) and the snapshot's dir renamed under one journal. */
export async function renameSnapshot(ctx: Context, name: string, from: string, to: string): Promise<void> {
  await ctx.withInstanceLock(name, async () => {
    const dir = requireSnapshot(ctx, name, from);
    const dst = snapshotDir(ctx, name, to);
    if (fs.existsSync(dst)) throw new TslxcError(`Cannot rename snapshot "${name}/${from}"`, `"${to}" exists`, undefined, { kind: 'conflict' });
    const t = target(ctx, name);
    const d = driverOf(t.pool.driver);
    await d.activate(ctx.paths, t.pool);
    const data = d.snapshotData(t, from);
    const dataTo = d.snapshotData(t, to);
    // Data under the new name that no snapshot dir names: an orphan of a create killed before temp names.
    if (dataTo && fs.existsSync(dataTo)) await d.deleteSnapshot(t, dst, to);
    commitRenames(
      t.instDir,
      'snapshot-rename',
      data && dataTo
        ? [
            [data, dataTo],
            [dir, dst],
          ]
        : [[dir, dst]],
    );
    const info = readYamlIfExists<SnapshotInfo>(path.join(dst, 'snapshot.yaml'))!;
    writeYamlAtomic(path.join(dst, 'snapshot.yaml'), { ...info, name: to }, 0o600);
  });
}

export async function deleteSnapshot(ctx: Context, name: string, snap: string): Promise<void> {
  await ctx.withInstanceLock(name, async () => {
    const dir = requireSnapshot(ctx, name, snap);
    const t = target(ctx, name);
    // The marker goes first: a crash after it leaves only data nobody lists, never a half snapshot.
    fs.rmSync(path.join(dir, 'snapshot.yaml'));
    await driverOf(t.pool.driver).deleteSnapshot(t, dir, snap);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** Sets (a time) or clears (null) a snapshot's expiry: LXD's PUT of a snapshot. */
export async function setSnapshotExpiry(ctx: Context, name: string, snap: string, expiresAt: Date | null): Promise<void> {
  await ctx.withInstanceLock(name, async () => {
    const file = path.join(requireSnapshot(ctx, name, snap), 'snapshot.yaml');
    const info = readYamlIfExists<SnapshotInfo>(file)!;
    const next: SnapshotInfo = { name: snap, created_at: info.created_at };
    if (expiresAt) next.expires_at = expiresAt.toISOString();
    writeYamlAtomic(file, next, 0o600);
  });
}

/**
 * Deletes the container's snapshots whose expiry has passed (LXD prunes them with a task each
 * minute; tslxc has no daemon: `tslxc serve` does it on a timer, the snapshot commands before
 * their work). Returns the names deleted; one that another command deletes first is no failure.
 */
export async function pruneExpiredSnapshots(ctx: Context, name: string, now = new Date()): Promise<string[]> {
  const expired = snapshotsOf(ctx, name).filter((s) => s.expires_at && Date.parse(s.expires_at) <= now.getTime());
  const deleted: string[] = [];
  for (const s of expired) {
    try {
      await deleteSnapshot(ctx, name, s.name);
      deleted.push(s.name);
    } catch (err) {
      if ((err as TslxcError).kind !== 'not-found') throw err;
    }
  }
  return deleted;
}
