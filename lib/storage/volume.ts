import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { listNames, loadConfig } from '../state/config.js';
import { liveness } from '../state/runtime.js';
import { listProfiles } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import { locksDir } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';
import { run } from '../util/exec.js';
import { withLock } from '../util/lock.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { loadPool, poolsDir, type PoolConfig } from './pool.js';
import { btrfs, deleteSubvolume, limitSubvolume, mountPoint } from './drivers/btrfs.js';
import { parseSize } from '../util/units.js';
import { poolError, runOnPool } from './drivers/common.js';
import { driverOf, usePool } from './driver.js';

/**
 * Custom storage volumes: data that outlives containers. A volume is a directory on its pool
 * (dir/overlay: TSLXC_DIR/storage-pools/POOL/volumes/VOL; btrfs: a subvolume POOLMOUNT/volumes/VOL)
 * with its record beside it (volumes/VOL.yaml: the record is what makes it a volume, written last
 * on create and removed first on delete, so a crash leaves either a volume or an orphan dir that
 * the next create of that name clears). Snapshots: volumes/.snapshots/VOL/SNAP (btrfs: read-only
 * subvolumes). A container gets a volume as a disk device {type: disk, pool, source: VOL, path},
 * bound into it at start like a host path.
 */
export interface VolumeInfo {
  name: string;
  pool: string;
  created_at: string;
  description?: string;
  /** LXD's volume config keys tslxc takes (validateVolumeConfig) */
  config?: Record<string, string>;
  snapshots?: Array<{ name: string; created_at: string }>;
}

/**
 * The config keys a custom volume takes, as LXD's do on these drivers: `size` (btrfs: a qgroup
 * limit on the volume's subvolume; a dir pool has no way to bound a directory) and `user.*`
 * (kept for the user). Anything else is refused, naming what is allowed.
 */
export function validateVolumeConfig(pool: PoolConfig, config: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(config)) {
    if (k.startsWith('user.') && k.length > 5) continue;
    if (k === 'size') {
      if (pool.driver !== 'btrfs')
        throw new TslxcError(`Cannot set "size" on a volume of pool "${pool.name}"`, `a ${pool.driver} pool cannot limit a volume's size`, 'use a btrfs pool', {
          kind: 'invalid',
        });
      if (v !== '') parseSize(v, { key: 'size' });
      continue;
    }
    throw new TslxcError(`Unknown volume config key "${k.slice(0, 64)}"`, 'allowed: size (btrfs pools), user.*', undefined, { kind: 'invalid' });
  }
  return config;
}

async function applySize(p: Paths, pool: PoolConfig, dir: string, size: string | undefined, what: string): Promise<void> {
  if (pool.driver !== 'btrfs') return;
  await limitSubvolume(pool, mountPoint(p, pool), dir, size ? parseSize(size, { key: 'size' }) : undefined, what);
}

const NAME = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/i;
export function validateVolumeName(name: unknown, what = 'volume'): string {
  if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
    throw new TslxcError(`Invalid ${what} name "${String(name).slice(0, 70)}"`, 'use letters, digits, ".", "_" and "-" (at most 63)', undefined, {
      kind: 'invalid',
    });
  }
  return name;
}

export function volumesRoot(p: Paths, pool: PoolConfig): string {
  return pool.driver === 'btrfs' ? path.join(mountPoint(p, pool), 'volumes') : path.join(poolsDir(p), pool.name, 'volumes');
}
export const volumeDir = (p: Paths, pool: PoolConfig, vol: string) => path.join(volumesRoot(p, pool), validateVolumeName(vol));
const volumeRecord = (p: Paths, pool: PoolConfig, vol: string) => path.join(volumesRoot(p, pool), `${validateVolumeName(vol)}.yaml`);
const snapsDir = (p: Paths, pool: PoolConfig, vol: string) => path.join(volumesRoot(p, pool), '.snapshots', validateVolumeName(vol));

/** The host dir of an existing volume (what a disk device binds). */
export function resolveVolume(p: Paths, poolName: string, vol: string): string {
  const pool = loadPool(p, poolName);
  const dir = volumeDir(p, pool, vol);
  if (!fs.existsSync(volumeRecord(p, pool, vol)) || !fs.existsSync(dir)) {
    throw new TslxcError(`Storage volume "${poolName}/${vol}" not found`, undefined, `see "tslxc storage volume list ${poolName}"`, { kind: 'not-found' });
  }
  return dir;
}

export function listVolumes(p: Paths, poolName: string): VolumeInfo[] {
  const pool = loadPool(p, poolName);
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(volumesRoot(p, pool));
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.endsWith('.yaml') && NAME.test(e.slice(0, -5)))
    .map((e) => readYamlIfExists<VolumeInfo>(path.join(volumesRoot(p, pool), e)))
    .filter((v): v is VolumeInfo => !!v && fs.existsSync(volumeDir(p, pool, v.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Volumes on a pool (a pool holding any cannot be deleted). */
export function poolHasVolumes(p: Paths, poolName: string): string[] {
  try {
    return listVolumes(p, poolName).map((v) => v.name);
  } catch {
    return [];
  }
}

export function showVolume(p: Paths, poolName: string, vol: string): VolumeInfo & { used_by: string[]; path: string } {
  const dir = resolveVolume(p, poolName, vol);
  const pool = loadPool(p, poolName);
  const rec = readYamlIfExists<VolumeInfo>(volumeRecord(p, pool, vol))!;
  return { ...rec, snapshots: listVolumeSnapshots(p, pool, vol), used_by: volumeUsers(p, poolName, vol), path: dir };
}

function listVolumeSnapshots(p: Paths, pool: PoolConfig, vol: string): Array<{ name: string; created_at: string }> {
  const dir = snapsDir(p, pool, vol);
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.endsWith('.yaml'))
    .map((e) => readYamlIfExists<{ name: string; created_at: string }>(path.join(dir, e)))
    .filter((s): s is { name: string; created_at: string } => !!s && fs.existsSync(path.join(dir, s.name)))
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}

export const usesVolume = (dev: Record<string, string>, pool: string, vol: string) => isVolumeDisk(dev) && dev.pool === pool && dev.source === vol;

/** Containers (`NAME`) and profiles (`profile:NAME`) whose devices name the volume. */
export function volumeUsers(p: Paths, poolName: string, vol: string): string[] {
  const out: string[] = [];
  for (const n of listNames(p)) {
    try {
      const cfg = loadConfig(p, n);
      if (Object.values(cfg.devices ?? {}).some((d) => usesVolume(d, poolName, vol))) out.push(n);
    } catch {
      /* a container being deleted */
    }
  }
  for (const prof of listProfiles(p)) if (Object.values(prof.devices).some((d) => usesVolume(d, poolName, vol))) out.push(`profile:${prof.name}`);
  return out;
}

function runningUsers(p: Paths, poolName: string, vol: string): string[] {
  return volumeUsers(p, poolName, vol).filter((u) => !u.startsWith('profile:') && liveness(p, u).initAlive);
}

const withVolumeLock = <T>(p: Paths, pool: string, fn: () => Promise<T>) =>
  withLock(locksDir(p), `volumes-${pool}`, fn, { purpose: `the volumes of pool "${pool}"`, timeoutMs: 5 * 60_000 });

async function ensurePool(ctx: Context, poolName: string): Promise<PoolConfig> {
  return usePool(ctx, poolName);
}

/** An empty data dir (btrfs: a subvolume), made at a temp name and renamed into place by the caller. */
async function makeData(pool: PoolConfig, dir: string): Promise<void> {
  if (pool.driver === 'btrfs')
    await btrfs(['subvolume', 'create', dir], `Cannot create a subvolume at ${dir}`).catch((e) => {
      throw poolError({ pool }, e);
    });
  else fs.mkdirSync(dir, { mode: 0o755 });
}

async function removeData(pool: PoolConfig, dir: string): Promise<void> {
  if (pool.driver === 'btrfs') {
    if (fs.existsSync(dir)) await btrfs(['property', 'set', dir, 'ro', 'false'], 'unlock').catch(() => {});
    await deleteSubvolume(dir);
  } else fs.rmSync(dir, { recursive: true, force: true });
}

/** A copy of the data at `src` into the new dir `dst` (btrfs to btrfs on one pool: a snapshot). */
async function copyData(srcPool: PoolConfig, src: string, dstPool: PoolConfig, dst: string, p: Paths): Promise<void> {
  if (srcPool.driver === 'btrfs' && dstPool.driver === 'btrfs' && mountPoint(p, srcPool) === mountPoint(p, dstPool)) {
    await btrfs(['subvolume', 'snapshot', src, dst], `Cannot copy ${src}`).catch((e) => {
      throw poolError({ pool: dstPool }, e);
    });
    return;
  }
  await makeData(dstPool, dst);
  await runOnPool(dstPool, 'cp', ['-a', '--reflink=auto', `${src}/.`, dst], `Cannot copy ${src}`);
}

/**
 * Makes a volume from `fill` (which fills the temp data dir): temp dir, fill, rename, record last.
 */
async function makeVolume(
  ctx: Context,
  pool: PoolConfig,
  vol: string,
  fill: (tmp: string) => Promise<void>,
  description?: string,
  config?: Record<string, string>,
): Promise<VolumeInfo> {
  const p = ctx.paths;
  const root = volumesRoot(p, pool);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const dir = volumeDir(p, pool, vol);
  if (fs.existsSync(volumeRecord(p, pool, vol)))
    throw new TslxcError(`Storage volume "${pool.name}/${vol}" already exists`, undefined, undefined, { kind: 'conflict' });
  await removeData(pool, dir); // an orphan of a crashed create or delete
  const tmp = path.join(root, `.tmp-${vol}-${process.pid}`);
  await removeData(pool, tmp);
  try {
    await fill(tmp);
    fs.renameSync(tmp, dir);
  } catch (err) {
    await removeData(pool, tmp).catch(() => {});
    throw err;
  }
  const info: VolumeInfo = {
    name: vol,
    pool: pool.name,
    created_at: new Date().toISOString(),
    ...(description ? { description } : {}),
    ...(config && Object.keys(config).length ? { config } : {}),
  };
  writeYamlAtomic(volumeRecord(p, pool, vol), info, 0o600);
  bumpGeneration(p, scope.volume(pool.name, vol));
  return info;
}

export async function createVolume(
  ctx: Context,
  poolName: string,
  vol: string,
  description?: string,
  config: Record<string, string> = {},
): Promise<VolumeInfo> {
  validateVolumeName(vol);
  const pool = await ensurePool(ctx, poolName);
  validateVolumeConfig(pool, config);
  return withVolumeLock(ctx.paths, poolName, () =>
    makeVolume(
      ctx,
      pool,
      vol,
      async (tmp) => {
        await makeData(pool, tmp);
        // On the temp subvolume: the limit moves with it, and a failure leaves nothing.
        if (config.size) await applySize(ctx.paths, pool, tmp, config.size, `volume "${poolName}/${vol}"`);
      },
      description,
      config,
    ),
  );
}

/**
 * Changes a volume's description and config (LXD's volume PUT/PATCH) under the pool's volumes
 * lock; `change` gets the record as it is then (the API's If-Match) and returns the new values.
 * A changed size is applied before the record is written.
 */
export async function updateVolume(
  ctx: Context,
  poolName: string,
  vol: string,
  change: (current: { description: string; config: Record<string, string> }) => { description: string; config: Record<string, string> },
): Promise<void> {
  const pool = await ensurePool(ctx, poolName);
  await withVolumeLock(ctx.paths, poolName, async () => {
    const p = ctx.paths;
    const dir = resolveVolume(p, poolName, vol);
    const rec = readYamlIfExists<VolumeInfo>(volumeRecord(p, pool, vol))!;
    const next = change({ description: rec.description ?? '', config: { ...(rec.config ?? {}) } });
    validateVolumeConfig(pool, next.config);
    if ((next.config.size ?? '') !== (rec.config?.size ?? '')) await applySize(p, pool, dir, next.config.size, `volume "${poolName}/${vol}"`);
    const { description: _d, config: _c, ...rest } = rec;
    writeYamlAtomic(
      volumeRecord(p, pool, vol),
      { ...rest, ...(next.description ? { description: next.description } : {}), ...(Object.keys(next.config).length ? { config: next.config } : {}) },
      0o600,
    );
    bumpGeneration(p, scope.volume(poolName, vol));
  });
}

export async function deleteVolume(ctx: Context, poolName: string, vol: string): Promise<void> {
  const pool = await ensurePool(ctx, poolName);
  await withVolumeLock(ctx.paths, poolName, async () => {
    const dir = resolveVolume(ctx.paths, poolName, vol);
    const users = volumeUsers(ctx.paths, poolName, vol);
    if (users.length)
      throw new TslxcError(
        `Cannot delete storage volume "${poolName}/${vol}"`,
        `it is in use by ${users.join(', ')}`,
        `detach it first with "tslxc storage volume detach ${poolName} ${vol} CONTAINER"`,
        { kind: 'conflict' },
      );
    fs.rmSync(volumeRecord(ctx.paths, pool, vol)); // first: from here on it is no volume
    bumpGeneration(ctx.paths, scope.volume(poolName, vol));
    const sd = snapsDir(ctx.paths, pool, vol);
    if (fs.existsSync(sd)) {
      for (const e of fs.readdirSync(sd)) if (!e.endsWith('.yaml')) await removeData(pool, path.join(sd, e));
      fs.rmSync(sd, { recursive: true, force: true });
    }
    await removeData(pool, dir);
  });
}

export async function renameVolume(ctx: Context, poolName: string, vol: string, to: string): Promise<void> {
  validateVolumeName(to);
  const pool = await ensurePool(ctx, poolName);
  await withVolumeLock(ctx.paths, poolName, async () => {
    const p = ctx.paths;
    const dir = resolveVolume(p, poolName, vol);
    const users = volumeUsers(p, poolName, vol);
    if (users.length) throw new TslxcError(`Cannot rename storage volume "${poolName}/${vol}"`, `it is in use by ${users.join(', ')}`, 'detach it first');
    if (fs.existsSync(volumeRecord(p, pool, to))) throw new TslxcError(`Cannot rename storage volume "${poolName}/${vol}"`, `"${to}" already exists`);
    await removeData(pool, volumeDir(p, pool, to));
    const rec = readYamlIfExists<VolumeInfo>(volumeRecord(p, pool, vol))!;
    // The new record is written only once the data is in place; the old one goes last.
    fs.renameSync(dir, volumeDir(p, pool, to));
    if (fs.existsSync(snapsDir(p, pool, vol))) fs.renameSync(snapsDir(p, pool, vol), snapsDir(p, pool, to));
    writeYamlAtomic(volumeRecord(p, pool, to), { ...rec, name: to }, 0o600);
    fs.rmSync(volumeRecord(p, pool, vol));
    bumpGeneration(p, scope.volume(poolName, vol));
    bumpGeneration(p, scope.volume(poolName, to));
  });
}

export async function copyVolume(ctx: Context, poolName: string, vol: string, to: string, dstPoolName = poolName): Promise<VolumeInfo> {
  validateVolumeName(to);
  const src = await ensurePool(ctx, poolName);
  const dst = await ensurePool(ctx, dstPoolName);
  const from = resolveVolume(ctx.paths, poolName, vol);
  return withVolumeLock(ctx.paths, dstPoolName, () => makeVolume(ctx, dst, to, (tmp) => copyData(src, from, dst, tmp, ctx.paths)));
}

export async function snapshotVolume(ctx: Context, poolName: string, vol: string, snap?: string): Promise<string> {
  const pool = await ensurePool(ctx, poolName);
  return withVolumeLock(ctx.paths, poolName, async () => {
    const p = ctx.paths;
    const dir = resolveVolume(p, poolName, vol);
    const existing = new Set(listVolumeSnapshots(p, pool, vol).map((s) => s.name));
    let n = 0;
    while (!snap && existing.has(`snap${n}`)) n++;
    const s = validateVolumeName(snap ?? `snap${n}`, 'snapshot');
    if (existing.has(s)) throw new TslxcError(`Snapshot "${poolName}/${vol}/${s}" already exists`);
    const sd = snapsDir(p, pool, vol);
    fs.mkdirSync(sd, { recursive: true, mode: 0o700 });
    const tmp = path.join(sd, `.tmp-${s}-${process.pid}`);
    await removeData(pool, tmp);
    await removeData(pool, path.join(sd, s));
    try {
      if (pool.driver === 'btrfs')
        await btrfs(['subvolume', 'snapshot', '-r', dir, tmp], `Cannot snapshot ${poolName}/${vol}`).catch((e) => {
          throw poolError({ pool }, e);
        });
      else await runOnPool(pool, 'cp', ['-a', '--reflink=auto', dir, tmp], `Cannot snapshot ${poolName}/${vol}`);
      fs.renameSync(tmp, path.join(sd, s));
    } catch (err) {
      await removeData(pool, tmp).catch(() => {});
      throw err;
    }
    writeYamlAtomic(path.join(sd, `${s}.yaml`), { name: s, created_at: new Date().toISOString() }, 0o600);
    return s;
  });
}

/** The volume's data as it was at SNAP: built beside it, swapped in by two renames. */
export async function restoreVolume(ctx: Context, poolName: string, vol: string, snap: string): Promise<void> {
  const pool = await ensurePool(ctx, poolName);
  await withVolumeLock(ctx.paths, poolName, async () => {
    const p = ctx.paths;
    const dir = resolveVolume(p, poolName, vol);
    const sd = snapsDir(p, pool, vol);
    if (!listVolumeSnapshots(p, pool, vol).some((s) => s.name === snap)) throw new TslxcError(`Snapshot "${poolName}/${vol}/${snap}" not found`);
    const users = runningUsers(p, poolName, vol);
    if (users.length)
      throw new TslxcError(`Cannot restore storage volume "${poolName}/${vol}"`, `it is in use by running ${users.join(', ')}`, 'stop them first');
    const root = volumesRoot(p, pool);
    const fresh = path.join(root, `.restore-${vol}`);
    const old = path.join(root, `.old-${vol}`);
    await removeData(pool, fresh);
    if (pool.driver === 'btrfs')
      await btrfs(['subvolume', 'snapshot', path.join(sd, snap), fresh], `Cannot restore ${poolName}/${vol}`).catch((e) => {
        throw poolError({ pool }, e);
      });
    else
      await runOnPool(pool, 'cp', ['-a', '--reflink=auto', path.join(sd, snap), fresh], `Cannot restore ${poolName}/${vol}`).catch(async (e) => {
        await removeData(pool, fresh);
        throw e;
      });
    await removeData(pool, old);
    fs.renameSync(dir, old);
    fs.renameSync(fresh, dir);
    await removeData(pool, old);
  });
}

/** A restore that crashed between its renames: the old data is put back. */
export function recoverVolume(p: Paths, pool: PoolConfig, vol: string): void {
  const dir = volumeDir(p, pool, vol);
  const old = path.join(volumesRoot(p, pool), `.old-${vol}`);
  if (!fs.existsSync(dir) && fs.existsSync(old)) fs.renameSync(old, dir);
}

export async function deleteVolumeSnapshot(ctx: Context, poolName: string, vol: string, snap: string): Promise<void> {
  const pool = await ensurePool(ctx, poolName);
  await withVolumeLock(ctx.paths, poolName, async () => {
    resolveVolume(ctx.paths, poolName, vol);
    const sd = snapsDir(ctx.paths, pool, vol);
    if (!fs.existsSync(path.join(sd, `${validateVolumeName(snap, 'snapshot')}.yaml`))) throw new TslxcError(`Snapshot "${poolName}/${vol}/${snap}" not found`);
    fs.rmSync(path.join(sd, `${snap}.yaml`));
    await removeData(pool, path.join(sd, snap));
  });
}

/** A gzipped tarball of the volume's data (numeric owners, xattrs and ACLs kept). */
export async function exportVolume(ctx: Context, poolName: string, vol: string, file: string): Promise<void> {
  await ensurePool(ctx, poolName);
  const dir = resolveVolume(ctx.paths, poolName, vol);
  const out = path.resolve(file);
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    await run('tar', ['--numeric-owner', '--xattrs', '--acls', '-C', dir, '-czf', tmp, '.'], { what: `Cannot export ${poolName}/${vol}` });
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export async function importVolume(ctx: Context, poolName: string, vol: string, file: string): Promise<VolumeInfo> {
  validateVolumeName(vol);
  const src = path.resolve(file);
  if (!fs.existsSync(src)) throw new TslxcError(`Cannot import ${file}`, 'no such file');
  const pool = await ensurePool(ctx, poolName);
  return withVolumeLock(ctx.paths, poolName, () =>
    makeVolume(ctx, pool, vol, async (tmp) => {
      await makeData(pool, tmp);
      await runOnPool(pool, 'tar', ['--numeric-owner', '--xattrs', '--acls', '-p', '-C', tmp, '-xf', src], `Cannot import ${file}`);
    }),
  );
}

/** Before a start: the pools of the container's volumes usable (a btrfs loop mounted). */
export async function activateVolumePools(ctx: Context, devices: Record<string, Record<string, string>>): Promise<void> {
  for (const d of Object.values(devices)) {
    if (!isVolumeDisk(d)) continue;
    const pool = loadPool(ctx.paths, d.pool);
    await driverOf(pool.driver).activate(ctx.paths, pool);
    recoverVolume(ctx.paths, pool, d.source);
  }
}

/** A disk device that is a custom volume of a pool (not the root disk, not a host path). */
export function isVolumeDisk(d: Record<string, string>): boolean {
  return d.type === 'disk' && !!d.pool && d.path !== '/';
}
