import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { withLock } from '../util/lock.js';
import { locksDir, type Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';

/**
 * Storage pools: TSLXC_DIR/storage-pools/NAME.yaml holds a pool's driver and config; a driver
 * (drivers/) keeps the data. The `default` pool is made on first use with the fastest driver the
 * host supports.
 */
export type DriverName = 'dir' | 'overlay' | 'btrfs';
export const DRIVERS: DriverName[] = ['dir', 'overlay', 'btrfs'];

export interface PoolConfig {
  name: string;
  driver: DriverName;
  description?: string;
  config: Record<string, string>;
  created_at: string;
}

export const poolsDir = (p: Paths) => path.join(p.stateDir, 'storage-pools');
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function validatePoolName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TslxcError(`Invalid storage pool name "${String(name).slice(0, 70)}"`, 'use lowercase letters, digits and "-" (at most 63)', undefined, {
      kind: 'invalid',
    });
  }
  return name;
}

export const poolFile = (p: Paths, name: string) => path.join(poolsDir(p), `${validatePoolName(name)}.yaml`);

export function loadPoolIfExists(p: Paths, name: string): PoolConfig | undefined {
  return readYamlIfExists<PoolConfig>(poolFile(p, name));
}

export function loadPool(p: Paths, name: string): PoolConfig {
  const pool = loadPoolIfExists(p, name);
  if (!pool) throw new TslxcError(`Storage pool "${name}" not found`, undefined, 'see "tslxc storage list"', { kind: 'not-found' });
  return pool;
}

export function savePool(p: Paths, pool: PoolConfig): void {
  mkdirp(poolsDir(p), 0o711);
  writeYamlAtomic(poolFile(p, pool.name), pool, 0o600);
  bumpGeneration(p, scope.pool(pool.name));
}

export function listPools(p: Paths): PoolConfig[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(poolsDir(p));
  } catch {
    return [];
  }
  // Names are [a-z0-9-], where code-unit order is the locale's: localeCompare would load ICU's
  // collation data into every process that lists pools (`tslxc serve` at each GET /1.0) for nothing.
  return entries
    .filter((f) => f.endsWith('.yaml') && NAME.test(f.slice(0, -5)))
    .map((f) => loadPoolIfExists(p, f.slice(0, -5)))
    .filter((x): x is PoolConfig => !!x)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function withPoolsLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  return withLock(locksDir(p), 'storage-pools', fn, { purpose: 'the storage pools', timeoutMs: 5 * 60_000 });
}

/** The fastest driver this kernel has: overlay copies nothing at create. */
export function bestDriver(): DriverName {
  try {
    if (/\toverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'))) return 'overlay';
  } catch {
    /* fall through */
  }
  return 'dir';
}
