import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseSize } from '../util/units.js';
import { readYamlIfExists } from '../util/yaml.js';
import { TslxcError } from '../errors.js';
import { writeFileInRoot } from '../util/rootfs.js';
import { containerDir } from '../state/paths.js';
import type { Image } from '../image/store.js';
import type { Context } from '../state/context.js';
import type { InstanceConfig } from '../state/config.js';
import { helperError, helperPath } from '../state/helper.js';
import { expandInstance } from '../profile/expand.js';
import { loadPool, loadPoolIfExists, type PoolConfig } from './pool.js';
import { driverOf, usePool } from './driver.js';
import { readRecord, writeRecord, type StorageRecord } from './record.js';
import { isRootDisk, rootDiskOf, validateDiskDevice } from './disk.js';
import type { BtrfsDriver } from './drivers/btrfs.js';
import type { HostAccess, Target } from './drivers/types.js';
import { activateVolumePools, isVolumeDisk } from './volume.js';
import { finishJournal } from '../state/journal.js';

/**
 * The seam between the container lifecycle and storage. A container's root lives on a storage pool
 * (pool.ts) whose driver (drivers/) decides what the root is: a copied dir, an overlay upper layer
 * over the image, a btrfs snapshot. Which pool is in INSTANCE_DIR/storage.yaml (record.ts).
 *   createRootfs  at create: make the container's root from the image
 *   rootfsArgs    at start: what the native helper needs to mount it
 *   hostAccess    a stopped container's files: a dir, or helper options that mount them
 *   deleteRootfs / rootfsRenames
 */
/** A container made before pools existed: a plain dir root. */
const LEGACY: PoolConfig = { name: '', driver: 'dir', config: {}, created_at: '' };

export function target(ctx: Context, name: string, instDir = containerDir(ctx.paths, name)): Target {
  const record = readRecord(instDir);
  const pool = record.pool ? loadPool(ctx.paths, record.pool) : LEGACY;
  return { paths: ctx.paths, pool, instDir, name, record };
}

/** The pool a new container goes to: the one asked for, else its profiles' root disk, else `default`. */
export function rootPoolOf(ctx: Context, profiles: string[]): string {
  const { devices } = expandInstance(ctx.paths, { profiles, config: {}, devices: {} });
  return rootDiskOf(devices)?.pool || 'default';
}

export async function createRootfs(ctx: Context, image: Image, name: string, poolName?: string, instDir = containerDir(ctx.paths, name)): Promise<PoolConfig> {
  const pool = await usePool(ctx, poolName ?? 'default');
  const devices = devicesOf(ctx, name, instDir);
  if (devices) checkRootSize(name, pool, devices);
  const record = { pool: pool.name, driver: pool.driver, image: image.fingerprint };
  writeRecord(instDir, record);
  const t = { paths: ctx.paths, pool, instDir, name, record };
  await driverOf(pool.driver).createRoot(t, image);
  if (devices) await applyRootSize(t, devices);
  return pool;
}

/** An empty root (no image under it: on an overlay pool, a flat one), for a container of source "none". */
export async function createEmptyRootfs(ctx: Context, name: string, poolName?: string, instDir = containerDir(ctx.paths, name)): Promise<PoolConfig> {
  const pool = await usePool(ctx, poolName ?? 'default');
  const record: StorageRecord = { pool: pool.name, driver: pool.driver, ...(pool.driver === 'overlay' ? { flat: true } : {}) };
  writeRecord(instDir, record);
  await driverOf(pool.driver).importRoot({ paths: ctx.paths, pool, instDir, name, record }, async () => {});
  return pool;
}

function devicesOf(ctx: Context, name: string, instDir: string): Record<string, Record<string, string>> | undefined {
  const cfg = readYamlIfExists<InstanceConfig>(path.join(instDir, 'config.yaml'));
  void name;
  return cfg ? expandInstance(ctx.paths, cfg).devices : undefined;
}

/** The root disk's `size=`, validated. */
export function rootSize(devices: Record<string, Record<string, string>>): number | undefined {
  const root = rootDiskOf(devices);
  if (root?.size === undefined || root.size === '') return undefined;
  return parseSize(root.size, { key: 'size' });
}

/**
 * A root disk size is a limit only where the driver enforces it (btrfs: a qgroup on the container's
 * subvolume). Elsewhere the key is refused, not ignored.
 */
export function checkRootSize(name: string, pool: PoolConfig, devices: Record<string, Record<string, string>>): void {
  const size = rootSize(devices);
  if (size === undefined || pool.driver === 'btrfs') return;
  throw new TslxcError(
    `Cannot limit the root disk of "${name}" (size=${rootDiskOf(devices)?.size})`,
    `its pool "${pool.name || '(none)'}" uses the ${pool.driver} driver, which cannot enforce a size`,
    'remove size= from the root disk, or use a btrfs pool (tslxc move NAME --storage POOL)',
  );
}

/** Container-side: the pool the container's root is on, against its (expanded) devices. */
export function checkRootDisk(ctx: Context, name: string, devices: Record<string, Record<string, string>>): void {
  // Volume disks: the pool and the volume must exist (the shape was checked with the device).
  for (const [dn, d] of Object.entries(devices)) {
    if (d.type !== 'disk' || isRootDisk(d) || d.pool === undefined) continue;
    // A btrfs loop pool not mounted yet (after a host reboot) is checked at the next start instead.
    const pool = loadPoolIfExists(ctx.paths, d.pool);
    if (pool?.driver === 'btrfs' && !pool.config.source && !fs.existsSync(path.join(ctx.paths.stateDir, 'storage-pools', pool.name, 'volumes'))) continue;
    validateDiskDevice(dn, d, { paths: ctx.paths });
  }
  if (rootSize(devices) === undefined) return;
  checkRootSize(name, target(ctx, name).pool, devices);
}

/** A running container's root disk size, changed live (a btrfs qgroup; other drivers refused it already). */
export async function applyRootSizeLive(ctx: Context, name: string, devices: Record<string, Record<string, string>>): Promise<void> {
  const t = target(ctx, name);
  checkRootSize(name, t.pool, devices);
  await applyRootSize(t, devices);
}

async function applyRootSize(t: Target, devices: Record<string, Record<string, string>>): Promise<void> {
  if (t.pool.driver !== 'btrfs') return;
  await (driverOf('btrfs') as BtrfsDriver).setRootSize(t, rootSize(devices));
}

/** Before a start: the pools usable (a btrfs loop file mounted after a host reboot), volumes included. */
export async function prepareRootfs(ctx: Context, name: string): Promise<void> {
  const t = target(ctx, name);
  await driverOf(t.pool.driver).activate(ctx.paths, t.pool);
  // Under the start's lock: a journal its recovery left because the pool was not mounted yet.
  finishJournal(t.instDir);
  const devices = devicesOf(ctx, name, t.instDir) ?? {};
  checkRootSize(name, t.pool, devices);
  await applyRootSize(t, devices);
  if (Object.values(devices).some(isVolumeDisk)) await activateVolumePools(ctx, devices);
}

export function rootfsArgs(ctx: Context, cfg: InstanceConfig): string[] {
  const t = target(ctx, cfg.name);
  return driverOf(t.pool.driver).startArgs(t);
}

export function hostAccess(ctx: Context, name: string, instDir?: string): HostAccess {
  const t = target(ctx, name, instDir);
  return driverOf(t.pool.driver).access(t);
}

/** The host dir holding the container's own data (an overlay's upper layer): for disk usage. */
export function rootfsPath(ctx: Context, name: string): string {
  return hostAccess(ctx, name).root;
}

export async function deleteRootfs(ctx: Context, name: string): Promise<void> {
  let t: Target;
  try {
    t = target(ctx, name);
  } catch {
    return; // its pool is gone: nothing of the root is left to remove outside its dir
  }
  await driverOf(t.pool.driver).deleteRoot(t);
}

/** What a rename of `from` to `to` moves of its root outside its dir (renames for the caller's journal). */
export async function rootfsRenames(ctx: Context, from: string, to: string): Promise<Array<[string, string]>> {
  const t = target(ctx, from);
  return driverOf(t.pool.driver).rootRenames(t, { ...t, name: to, instDir: containerDir(ctx.paths, to) });
}

export interface RootFile {
  path: string;
  content: string;
  mode?: number;
}

/**
 * Writes files into a stopped container's root (identity files at create, rename, copy). On an
 * overlay the helper mounts the merged view in a mount namespace of its own, so a whiteout or a
 * symlink in either layer is honoured exactly as inside the container.
 */
export function writeRootFiles(ctx: Context, name: string, files: RootFile[], instDir?: string): void {
  const acc = hostAccess(ctx, name, instDir);
  if (!acc.helperArgs) {
    for (const f of files) writeFileInRoot(acc.root, f.path, f.content, f.mode ?? 0o644);
    return;
  }
  if (!files.length) return;
  const odd = files.find((f) => !f.path.startsWith('/') || f.path.includes('\n') || f.path.includes('\0'));
  if (odd) throw new TslxcError(`Cannot write ${JSON.stringify(odd.path).slice(0, 80)} in "${name}"`, 'a file path must be absolute, without newlines');
  // One helper run (one overlay mount) for all of them: records "MODE LENGTH PATH\n" + content.
  const input = Buffer.concat(
    files.flatMap((f) => {
      const content = Buffer.from(f.content);
      return [Buffer.from(`${(f.mode ?? 0o644).toString(8)} ${content.length} ${f.path}\n`), content];
    }),
  );
  const r = spawnSync(helperPath(), ['file', ...acc.helperArgs, '--write-many', '--mkdir'], { input, encoding: 'utf8' });
  if (r.status !== 0)
    throw new TslxcError(`Cannot write ${files.length === 1 ? files[0].path : 'its identity files'} in "${name}"`, helperError(r.stderr ?? ''));
}

export function rootExists(ctx: Context, name: string): boolean {
  return fs.existsSync(hostAccess(ctx, name).root);
}
