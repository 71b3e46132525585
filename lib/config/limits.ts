import { TslxcError } from '../errors.js';
import type { CgroupLimits } from '../cgroup/types.js';
import { formatCpuList, parseBool, parseCpuAllowance, parseCpuList, parseInteger, parseSize } from '../util/units.js';

/**
 * From a container's expanded config (profiles applied) to the cgroup limits to apply, with the
 * meaning LXD gives the same keys:
 *
 * | key                      | value                                      | becomes                          |
 * |--------------------------|--------------------------------------------|----------------------------------|
 * | limits.memory            | size (512MiB, 2GB) or % of host memory     | memoryBytes                      |
 * | limits.memory.enforce    | hard (default) or soft                     | memorySoft                       |
 * | limits.memory.swap       | true (default: unlimited), false, or size  | memorySwapBytes (false = 0)      |
 * | limits.cpu               | a count (2) or a CPU list (0-1,3)          | cpus                             |
 * | limits.cpu.allowance     | 50% or 25ms/100ms (both hard, see below)   | cpuQuotaUs/cpuPeriodUs           |
 * | limits.cpu.priority      | 0-10 (default 10)                          | lowers cpuWeight                 |
 * | limits.processes         | a count                                    | pidsMax                          |
 * | limits.disk.priority     | 0-10                                       | blkioWeight (priority*100, 0→10) |
 *
 * One deliberate departure from LXD: a percentage allowance is a HARD quota (50% = 50ms of CPU
 * time per 100ms period), where LXD turns it into a soft share that only matters under
 * contention. A soft share does nothing on an idle host, so "limits.cpu.allowance: 25%" would let
 * a busy loop take a whole CPU, which is not what anyone writing 25% expects (and the lab profile
 * relies on it really holding). 200% is two CPUs' worth. Relative weight is still available
 * through limits.cpu.priority.
 */
export const LIMIT_KEYS = [
  'limits.memory',
  'limits.memory.enforce',
  'limits.memory.swap',
  'limits.cpu',
  'limits.cpu.allowance',
  'limits.cpu.priority',
  'limits.processes',
  'limits.disk.priority',
] as const;

export interface LimitsContext {
  /** host memory, for "limits.memory: 50%" */
  hostMemoryBytes?: number;
  /** the host's online CPUs, to check a CPU list and to pick CPUs for a count */
  hostCpus?: readonly number[];
  /** container name: spreads containers that ask for a count of CPUs over different CPUs */
  name?: string;
}

type Config = Readonly<Record<string, unknown>>;

function str(config: Config, key: string): string | undefined {
  const v = config[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new TslxcError(`Invalid value for ${key}`, `expected a string, got ${Array.isArray(v) ? 'a list' : typeof v}`);
}

export function limitsFromConfig(config: Config, ctx: LimitsContext = {}): CgroupLimits {
  const limits: CgroupLimits = {};

  const memory = str(config, 'limits.memory');
  if (memory !== undefined) {
    if (memory.trim().endsWith('%') && ctx.hostMemoryBytes === undefined) {
      throw new TslxcError('Cannot use a percentage for limits.memory', 'the host memory size is unknown');
    }
    limits.memoryBytes = parseSize(memory, { key: 'limits.memory', total: ctx.hostMemoryBytes });
    if (limits.memoryBytes === 0) throw new TslxcError(`Invalid value "${memory}" for limits.memory`, 'a memory limit must be above 0');
  }

  const enforce = str(config, 'limits.memory.enforce');
  if (enforce !== undefined) {
    if (enforce !== 'hard' && enforce !== 'soft') {
      throw new TslxcError(`Invalid value "${enforce}" for limits.memory.enforce`, 'expected hard or soft');
    }
    if (enforce === 'soft') limits.memorySoft = true;
  }

  const swap = str(config, 'limits.memory.swap');
  if (swap !== undefined) {
    // A boolean as in LXD, or (tslxc) a size: how much swap on top of the memory limit.
    const asBool = /^(true|false|yes|no|on|off)$/i.test(swap.trim()) ? parseBool(swap, { key: 'limits.memory.swap' }) : undefined;
    if (asBool === false) limits.memorySwapBytes = 0;
    else if (asBool === undefined) limits.memorySwapBytes = parseSize(swap, { key: 'limits.memory.swap' });
  }

  const cpu = str(config, 'limits.cpu');
  if (cpu !== undefined) limits.cpus = cpuSet(cpu, ctx);

  let shares = 1024;
  const allowance = str(config, 'limits.cpu.allowance');
  if (allowance !== undefined) {
    // Both forms are hard: a percentage is that share of one CPU per 100 ms period.
    const a = parseCpuAllowance(allowance, { key: 'limits.cpu.allowance' });
    if (a.quotaUs < 1000) {
      throw new TslxcError(`Invalid value "${allowance}" for limits.cpu.allowance`, 'it allows less than 1ms of CPU time per period', 'use at least 1%');
    }
    limits.cpuQuotaUs = a.quotaUs;
    limits.cpuPeriodUs = a.periodUs;
  }
  const priority = str(config, 'limits.cpu.priority');
  if (priority !== undefined) shares -= 10 - parseInteger(priority, { key: 'limits.cpu.priority', min: 0, max: 10 });
  if (shares !== 1024) limits.cpuWeight = Math.min(10000, Math.max(1, Math.round((shares * 100) / 1024)));

  const processes = str(config, 'limits.processes');
  if (processes !== undefined) limits.pidsMax = parseInteger(processes, { key: 'limits.processes', min: 1 });

  const disk = str(config, 'limits.disk.priority');
  if (disk !== undefined) {
    const p = parseInteger(disk, { key: 'limits.disk.priority', min: 0, max: 10 });
    limits.blkioWeight = p === 0 ? 10 : p * 100;
  }
  return limits;
}

/**
 * limits.cpu: a plain number is a count of CPUs (LXD's meaning), anything else a CPU list. A count
 * is turned into a list of host CPUs, starting at a place derived from the container's name so
 * that several one-CPU containers do not all land on CPU 0.
 */
function cpuSet(value: string, ctx: LimitsContext): string {
  const key = 'limits.cpu';
  if (/^\s*\d+\s*$/.test(value)) {
    const count = parseInteger(value, { key, min: 1 });
    const host = ctx.hostCpus ? [...ctx.hostCpus].sort((a, b) => a - b) : undefined;
    if (!host) throw new TslxcError(`Cannot apply limits.cpu=${count}`, 'the host CPU list is unknown');
    if (count > host.length) {
      throw new TslxcError(`Invalid value "${value}" for ${key}`, `the host has only ${host.length} CPUs`, `use at most ${host.length}, or a list like 0-1`);
    }
    if (count === host.length) return formatCpuList(host);
    const start = ctx.name ? hash(ctx.name) % host.length : 0;
    return formatCpuList(Array.from({ length: count }, (_v, i) => host[(start + i) % host.length]!));
  }
  return formatCpuList(parseCpuList(value, { key, ...(ctx.hostCpus ? { available: ctx.hostCpus } : {}) }));
}

/** FNV-1a: small, stable across runs and Node versions. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
