import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { locksDir } from '../state/paths.js';
import { withLock } from '../util/lock.js';
import { expandInstance } from '../profile/expand.js';
import { parseInteger } from '../util/units.js';
import {
  buildRanges,
  formatIdmap,
  hostRanges,
  isIsolated,
  isPrivileged,
  ISOLATED_SIZE,
  parseIdmapJson,
  parseRawIdmap,
  type HostRange,
  type IdMap,
} from '../config/idmap.js';
import { helperPath } from '../state/helper.js';
import { hostAccess } from '../storage/instance.js';
import { sameMap, shiftTree } from '../storage/shift.js';
import { listNames, loadConfig, saveConfig, type InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';

/**
 * The id map of an unprivileged container at start, recorded in its config as volatile state (as
 * LXD's volatile.idmap.*): `volatile.idmap.base` (first host id of its range) and
 * `volatile.idmap.current` (the whole map, JSON). A container keeps its map across restarts; an
 * isolated one gets a block no other isolated container holds (allocated under a global lock, and
 * again when a copy brought a block another container already holds).
 */

export const VOLATILE_BASE = 'volatile.idmap.base';
export const VOLATILE_CURRENT = 'volatile.idmap.current';
/** The map the rootfs's files are shifted to on disk (absent: unshifted, the usual idmapped case). */
export const VOLATILE_ON_DISK = 'volatile.last_state.idmap';

interface Block {
  base: number;
  size: number;
}

function overlaps(a: Block, b: Block): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

/** Blocks held by the other isolated containers (from their recorded maps). */
function isolatedBlocks(ctx: Context, except: string): Array<Block & { name: string }> {
  const out: Array<Block & { name: string }> = [];
  for (const n of listNames(ctx.paths)) {
    if (n === except) continue;
    let cfg: InstanceConfig;
    try {
      cfg = loadConfig(ctx.paths, n);
    } catch {
      continue;
    }
    const base = Number(cfg.config?.[VOLATILE_BASE]);
    if (!Number.isInteger(base) || base <= 0) continue;
    let config: Record<string, string>;
    try {
      config = expandInstance(ctx.paths, cfg).config;
    } catch {
      config = cfg.config ?? {};
    }
    if (!isIsolated(config) || isPrivileged(config)) continue;
    const map = parseIdmapJson(cfg.config[VOLATILE_CURRENT]);
    const root = map?.uid.find((r) => r.nsid === 0);
    out.push({ name: n, base, size: root?.count ?? ISOLATED_SIZE });
  }
  return out;
}

function allocate(range: HostRange, size: number, taken: Block[], want?: number): number {
  if (want !== undefined && want >= range.base && want + size <= range.base + range.size && !taken.some((b) => overlaps(b, { base: want, size }))) return want;
  // The first block stays free: non-isolated containers' usual ids (0-65535) live there.
  for (let base = range.base + size; base + size <= range.base + range.size; base += size) {
    const clash = taken.find((b) => overlaps(b, { base, size }));
    if (!clash) return base;
    base = Math.max(base, clash.base + clash.size - size);
  }
  throw new TslxcError(
    'Cannot give the container an isolated id range',
    `no free block of ${size} ids is left in ${range.base}-${range.base + range.size - 1}`,
    "add ids to root's entries in /etc/subuid and /etc/subgid, or use a smaller security.idmap.size",
  );
}

/**
 * The map for this start (undefined: privileged), recorded in cfg.config (the caller saves cfg).
 * Throws a one-line error when the keys ask for something impossible.
 */
export async function planIdmap(ctx: Context, cfg: InstanceConfig, config: Record<string, string>): Promise<IdMap | undefined> {
  if (isPrivileged(config)) {
    delete cfg.config[VOLATILE_BASE];
    delete cfg.config[VOLATILE_CURRENT];
    return undefined;
  }
  const ranges = hostRanges();
  // One range for both kinds: uids and gids get the same base (the usual subuid = subgid setup).
  const range: HostRange = { base: Math.max(ranges.uid.base, ranges.gid.base), size: Math.min(ranges.uid.size, ranges.gid.size) };
  const isolated = isIsolated(config);
  const sizeKey = config['security.idmap.size'];
  const baseKey = config['security.idmap.base'];
  const size = sizeKey !== undefined ? parseInteger(sizeKey, { key: 'security.idmap.size' }) : isolated ? ISOLATED_SIZE : range.size;
  const raw = config['raw.idmap'] !== undefined ? parseRawIdmap(config['raw.idmap']) : [];

  let base: number;
  if (baseKey !== undefined) {
    base = parseInteger(baseKey, { key: 'security.idmap.base' });
  } else if (isolated) {
    base = await withLock(
      locksDir(ctx.paths),
      'idmap',
      () => {
        const previous = Number(cfg.config[VOLATILE_BASE]);
        const b = allocate(range, size, isolatedBlocks(ctx, cfg.name), Number.isInteger(previous) && previous > 0 ? previous : undefined);
        // Recorded at once (under the lock), so a concurrent start sees the block as taken.
        recordBase(ctx, cfg.name, b);
        return b;
      },
      { purpose: 'the id map allocation' },
    );
  } else {
    base = range.base;
    if (size > range.size)
      throw new TslxcError(
        'Invalid value for security.idmap.size',
        `the host's range has only ${range.size} ids (root's entries in /etc/subuid and /etc/subgid)`,
      );
  }
  if (base + size - 1 > 2 ** 32 - 1)
    throw new TslxcError('Invalid id map', `${base}+${size} goes past the largest id`, 'lower security.idmap.base or security.idmap.size');
  const map: IdMap = { uid: buildRanges(base, size, raw, 'uid'), gid: buildRanges(base, size, raw, 'gid') };
  cfg.config[VOLATILE_BASE] = String(base);
  cfg.config[VOLATILE_CURRENT] = formatIdmap(map);
  return map;
}

/** Writes the allocated base into the container's config file right away (see planIdmap). */
function recordBase(ctx: Context, name: string, base: number): void {
  const file = loadConfig(ctx.paths, name);
  file.config = { ...(file.config ?? {}), [VOLATILE_BASE]: String(base) };
  saveConfig(ctx.paths, file);
}

/** The host uid/gid of container root for a recorded map (for ownership checks and chown). */
export function mappedRoot(map: IdMap): { uid: number; gid: number } {
  const u = map.uid.find((r) => r.nsid === 0)!;
  const g = map.gid.find((r) => r.nsid === 0)!;
  return { uid: u.hostid, gid: g.hostid };
}

/** The map the container's files on disk are shifted to, or undefined when they are unshifted. */
export function onDiskMap(config: Record<string, string> | undefined): IdMap | undefined {
  const m = parseIdmapJson(config?.[VOLATILE_ON_DISK]);
  return m && (m.uid.length || m.gid.length) ? m : undefined;
}

/**
 * Where the rootfs can be idmapped, its files stay unshifted and the helper gets --rootfs-idmap.
 * Elsewhere (or with TSLXC_IDMAPPED_MOUNTS=0, which tests use to exercise this path) the files are
 * shifted on disk into the container's range once, recorded as volatile.last_state.idmap, and
 * shifted again when the map changes (or back when the container becomes privileged). An overlay
 * root cannot be shifted (its image layers are shared): it needs idmapped mounts.
 */
export function prepareRootIds(ctx: Context, cfg: InstanceConfig, map: IdMap | undefined): { idmapRootfs: boolean } {
  const onDisk = onDiskMap(cfg.config);
  if (!map && !onDisk) return { idmapRootfs: false }; // privileged, files unshifted: nothing to do
  const acc = hostAccess(ctx, cfg.name);
  const record = (m: IdMap | undefined) => {
    if (m) cfg.config[VOLATILE_ON_DISK] = formatIdmap(m);
    else delete cfg.config[VOLATILE_ON_DISK];
    // Saved at once: the files on disk changed, whatever happens to this start.
    const file = loadConfig(ctx.paths, cfg.name);
    file.config = { ...(file.config ?? {}) };
    if (m) file.config[VOLATILE_ON_DISK] = cfg.config[VOLATILE_ON_DISK]!;
    else delete file.config[VOLATILE_ON_DISK];
    saveConfig(ctx.paths, file);
  };
  const idmappable = process.env.TSLXC_IDMAPPED_MOUNTS !== '0' && supportsIdmappedMounts(acc.root, ctx.paths.runDir);
  const want = map && !idmappable ? map : undefined;
  if (map && !idmappable && acc.helperArgs) {
    throw new TslxcError(
      `Cannot start "${cfg.name}" unprivileged`,
      `the filesystem of ${acc.root} does not support idmapped mounts, and an overlay root cannot be shifted (its image layers are shared)`,
      'use a dir or btrfs pool, or set security.privileged=true',
    );
  }
  if (!sameMap(onDisk, want)) {
    shiftTree(acc.root, onDisk, want);
    record(want);
  }
  return { idmapRootfs: map !== undefined && idmappable };
}

const probed = new Map<string, boolean>();

/**
 * Whether the filesystem holding DIR can be idmapped on this kernel (the helper tries it on a
 * detached clone of the mount). Cached per device and filesystem type for the life of the
 * process and, given a run dir, in RUN_DIR/idmap-probe/ for the rest of this boot (the probe is
 * a helper run, else on every launch's path). The boot id is in the file's name: a run dir that
 * survives a reboot (a disk-backed /run) never answers for another kernel.
 */
export function supportsIdmappedMounts(dir: string, runDir?: string): boolean {
  let key: string;
  try {
    key = `${fs.statSync(dir).dev}-${fs.statfsSync(dir).type.toString(16)}`;
  } catch {
    return false;
  }
  const known = probed.get(key);
  if (known !== undefined) return known;
  let cache: string | undefined;
  try {
    if (runDir) cache = path.join(runDir, 'idmap-probe', `${fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}-${key}`);
  } catch {
    /* no boot id: probe every time */
  }
  try {
    if (cache) {
      const answer = fs.readFileSync(cache, 'utf8').trim();
      if (answer === 'yes' || answer === 'no') {
        probed.set(key, answer === 'yes');
        return answer === 'yes';
      }
    }
  } catch {
    /* not probed yet this boot */
  }
  const r = spawnSync(helperPath(), ['idmap-probe', dir], { encoding: 'utf8' });
  const ok = r.status === 0;
  probed.set(key, ok);
  if (cache) {
    try {
      fs.mkdirSync(path.dirname(cache), { recursive: true, mode: 0o700 });
      fs.writeFileSync(`${cache}.${process.pid}`, ok ? 'yes\n' : 'no\n');
      fs.renameSync(`${cache}.${process.pid}`, cache);
    } catch {
      /* answered anyway */
    }
  }
  return ok;
}
