import type { Paths } from '../../state/paths.js';
import type { Image } from '../../image/store.js';
import type { PoolConfig } from '../pool.js';
import type { StorageRecord } from '../record.js';

/** Where a stopped container's files are: a plain dir, or (overlay) helper options that mount it. */
export type HostAccess = { root: string; helperArgs?: undefined } | { root: string; helperArgs: string[] };

/**
 * A container's root on one driver. `instDir` is the container's dir (or, during a copy, the
 * temporary dir that becomes it); drivers that keep data elsewhere (btrfs) key it by name.
 */
export interface Target {
  paths: Paths;
  pool: PoolConfig;
  instDir: string;
  name: string;
  record: StorageRecord;
}

/** A tree as a dir, or as an overlay of `dir` over `lower` (read-only, mounted only to be copied). */
export interface FullView {
  dir: string;
  lower?: string[];
}

/**
 * A new tree made beside the current one: the renames that put it in place, in order (the caller
 * runs them under a journal, with its own, e.g. the config's), what they replace, and how the
 * driver removes that once they are done.
 */
export interface RootSwap {
  renames: Array<[string, string]>;
  leftovers: string[];
  discard(): Promise<void>;
}

export interface Usage {
  size?: number;
  used?: number;
  free?: number;
}

export interface Driver {
  /** Checks and prepares a new pool (btrfs: makes and mounts the loop file). */
  initPool(paths: Paths, pool: PoolConfig): Promise<void>;
  /** Makes sure the pool is usable now (btrfs loop: mounted). */
  activate(paths: Paths, pool: PoolConfig): Promise<void>;
  destroyPool(paths: Paths, pool: PoolConfig): Promise<void>;
  source(paths: Paths, pool: PoolConfig): string;
  usage(paths: Paths, pool: PoolConfig): Usage;

  createRoot(t: Target, image: Image): Promise<void>;
  startArgs(t: Target): string[];
  access(t: Target): HostAccess;
  deleteRoot(t: Target): Promise<void>;
  /**
   * For a rename: what of the root lives outside the container's dir, as renames from the old
   * name's places to the new name's (journaled by the caller); orphans in the way are removed.
   */
  rootRenames(from: Target, to: Target): Promise<Array<[string, string]>>;
  copyRoot(from: Target, to: Target): Promise<void>;
  /** Snapshot data of a container: made read-only where the driver can. */
  snapshot(t: Target, snapDir: string, snap: string): Promise<void>;
  /** The snapshot's tree built beside the root; the caller commits the swap (state/journal.ts). */
  restore(t: Target, snapDir: string, snap: string): Promise<RootSwap>;
  deleteSnapshot(t: Target, snapDir: string, snap: string): Promise<void>;
  /** Where a snapshot's data lives outside its dir (btrfs: its subvolume), for renames; else undefined. */
  snapshotData(t: Target, snap: string): string | undefined;
  /** A new container's root from a snapshot (copy dev1/snap0 dev2). */
  copyFromSnapshot(from: Target, snapDir: string, snap: string, to: Target): Promise<void>;

  /** Across pools: the whole tree of a root (or of a snapshot's): a dir, with lower layers under it on an overlay. */
  fullView(t: Target, snapDir?: string, snap?: string): FullView;
  /** Across pools: a new root made empty, then filled by `fill` with a whole tree. */
  importRoot(to: Target, fill: (dir: string) => Promise<void>): Promise<void>;
  importSnapshot(to: Target, snapDir: string, snap: string, fill: (dir: string) => Promise<void>): Promise<void>;
}
