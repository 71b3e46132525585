import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { bestDriver, loadPoolIfExists, savePool, withPoolsLock, type DriverName, type PoolConfig } from './pool.js';
import { DirDriver, OverlayDriver } from './drivers/dir.js';
import { BtrfsDriver } from './drivers/btrfs.js';
import type { Driver } from './drivers/types.js';

/** The driver that serves each kind of pool, and the pool a container or volume is put on. */
const drivers: Record<DriverName, Driver> = { dir: new DirDriver(), overlay: new OverlayDriver(), btrfs: new BtrfsDriver() };

export function driverOf(name: DriverName): Driver {
  const d = drivers[name];
  if (!d) throw new TslxcError(`Unknown storage driver "${name}"`, 'use dir, overlay or btrfs');
  return d;
}

/** Loads a pool; `default` is made on first use with the fastest driver the host has. */
export async function usePool(ctx: Context, name: string): Promise<PoolConfig> {
  const existing = loadPoolIfExists(ctx.paths, name);
  if (existing) {
    await driverOf(existing.driver).activate(ctx.paths, existing);
    return existing;
  }
  if (name !== 'default') throw new TslxcError(`Storage pool "${name}" not found`, undefined, 'see "tslxc storage list"', { kind: 'not-found' });
  return withPoolsLock(ctx.paths, async () => {
    const again = loadPoolIfExists(ctx.paths, name);
    if (again) return again;
    const pool: PoolConfig = { name, driver: bestDriver(), description: 'default pool (made on first use)', config: {}, created_at: new Date().toISOString() };
    await driverOf(pool.driver).initPool(ctx.paths, pool);
    savePool(ctx.paths, pool);
    return pool;
  });
}
