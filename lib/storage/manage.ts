import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { listNames } from '../state/config.js';
import { containerDir, type Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';
import { parseSize } from '../util/units.js';
import { DRIVERS, listPools, loadPool, poolFile, savePool, validatePoolName, withPoolsLock, type DriverName, type PoolConfig } from './pool.js';
import { readRecord } from './record.js';
import { driverOf } from './driver.js';
import { BtrfsDriver } from './drivers/btrfs.js';
import type { Usage } from './drivers/types.js';
import { poolHasVolumes } from './volume.js';
import { dropSpares, listSpares, SPARE_KEY, validateSpareSetting } from './spares.js';

/** Pool administration behind `tslxc storage`. */
export async function createPool(ctx: Context, name: string, driver: string, config: Record<string, string>, description?: string): Promise<PoolConfig> {
  validatePoolName(name);
  if (!DRIVERS.includes(driver as DriverName))
    throw new TslxcError(`Unknown storage driver "${driver}"`, `use ${DRIVERS.join(', ')}`, undefined, { kind: 'invalid' });
  return withPoolsLock(ctx.paths, async () => {
    if (fs.existsSync(poolFile(ctx.paths, name))) throw new TslxcError(`Storage pool "${name}" already exists`, undefined, undefined, { kind: 'conflict' });
    const pool: PoolConfig = { name, driver: driver as DriverName, description, config: { ...config }, created_at: new Date().toISOString() };
    const d = driverOf(pool.driver);
    await d.initPool(ctx.paths, pool);
    try {
      savePool(ctx.paths, pool);
    } catch (err) {
      await d.destroyPool(ctx.paths, pool).catch(() => {});
      throw err;
    }
    return pool;
  });
}

/** Containers whose root lives on the pool. */
export function poolUsers(ctx: Context, name: string): string[] {
  return listNames(ctx.paths).filter((n) => readRecord(containerDir(ctx.paths, n)).pool === name);
}

export interface PoolInfo extends PoolConfig {
  source: string;
  usage: Usage;
  used_by: string[];
  volumes: string[];
  /** dir pools: images with a spare root ready (spares.ts), by fingerprint. */
  spares?: string[];
}

export async function poolInfo(ctx: Context, name: string): Promise<PoolInfo> {
  const pool = loadPool(ctx.paths, name);
  const d = driverOf(pool.driver);
  await d.activate(ctx.paths, pool);
  return {
    ...pool,
    source: d.source(ctx.paths, pool),
    usage: d.usage(ctx.paths, pool),
    used_by: poolUsers(ctx, name),
    volumes: poolHasVolumes(ctx.paths, name),
    ...(pool.driver === 'dir' ? { spares: listSpares(ctx.paths, name) } : {}),
  };
}

export function listPoolConfigs(ctx: Context): PoolConfig[] {
  return listPools(ctx.paths);
}

export async function deletePool(ctx: Context, name: string): Promise<void> {
  await withPoolsLock(ctx.paths, async () => {
    const pool = loadPool(ctx.paths, name);
    const users = poolUsers(ctx, name);
    if (users.length)
      throw new TslxcError(`Cannot delete storage pool "${name}"`, `it is in use by ${users.join(', ')}`, 'delete or move those containers first', {
        kind: 'conflict',
      });
    await driverOf(pool.driver).activate(ctx.paths, pool);
    const vols = poolHasVolumes(ctx.paths, name);
    if (vols.length)
      throw new TslxcError(
        `Cannot delete storage pool "${name}"`,
        `it holds storage volumes: ${vols.join(', ')}`,
        `delete them first with "tslxc storage volume delete ${name} VOLUME"`,
        { kind: 'conflict' },
      );
    await dropSpares(ctx.paths, name);
    await driverOf(pool.driver).destroyPool(ctx.paths, pool);
    if (pool.driver !== 'btrfs') fs.rmSync(path.join(ctx.paths.stateDir, 'storage-pools', name), { recursive: true, force: true });
    fs.rmSync(poolFile(ctx.paths, name), { force: true });
    bumpGeneration(ctx.paths, scope.pool(name));
  });
}

/** `storage set`: description, size (grows a btrfs loop file), spare_roots (dir; false removes the spares). */
export async function setPool(ctx: Context, name: string, changes: Record<string, string>): Promise<PoolConfig> {
  return withPoolsLock(ctx.paths, async () => {
    const pool = loadPool(ctx.paths, name);
    for (const [k, v] of Object.entries(changes)) {
      if (k === 'description') pool.description = v;
      else if (k === 'size' && pool.driver === 'btrfs') {
        const size = parseSize(v, { key: 'size' });
        await (driverOf('btrfs') as BtrfsDriver).grow(ctx.paths, pool, size);
        pool.config.size = String(size);
      } else if (k === SPARE_KEY && pool.driver === 'dir') {
        validateSpareSetting(v);
        pool.config[k] = v;
        if (v === 'false') await dropSpares(ctx.paths, name);
      } else
        throw new TslxcError(
          `Cannot set "${k}" on pool "${name}"`,
          `settable: ${{ btrfs: 'description, size', dir: `description, ${SPARE_KEY}`, overlay: 'description' }[pool.driver]}`,
        );
    }
    savePool(ctx.paths, pool);
    return pool;
  });
}

export const poolDataDir = (p: Paths, name: string) => path.join(p.stateDir, 'storage-pools', validatePoolName(name));
