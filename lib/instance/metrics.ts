import fsp from 'node:fs/promises';
import type { CgroupStats } from '../cgroup/types.js';
import type { Context } from '../state/context.js';
import { listNames } from '../state/config.js';
import { liveness } from '../state/runtime.js';
import { cgroupsOf } from '../cgroup/context.js';

/**
 * The numbers behind GET /1.0/metrics, per running container, as LXD measures them: CPU time per
 * CPU and mode, memory from the cgroup (MemTotal is the limit, or the host's memory without one),
 * each interface as the container sees it (its own /proc/PID/net/dev, loopback included), its root
 * filesystem (statfs through /proc/PID/root) and its process count. Every file is read
 * asynchronously and the containers are read side by side, so a scrape never holds the server's
 * event loop for long.
 */

export interface InterfaceCounters {
  device: string;
  receiveBytes: number;
  receivePackets: number;
  receiveErrs: number;
  receiveDrop: number;
  transmitBytes: number;
  transmitPackets: number;
  transmitErrs: number;
  transmitDrop: number;
}

export interface FilesystemUsage {
  device: string;
  fstype: string;
  mountpoint: string;
  availBytes: number;
  freeBytes: number;
  sizeBytes: number;
}

export interface InstanceMetrics {
  name: string;
  cpu: CgroupStats['cpu'];
  /** LXD's memory series by their middle part: MemTotal, MemFree, MemAvailable, Active, Cached, ... */
  memory: Record<string, number>;
  network: InterfaceCounters[];
  filesystems: FilesystemUsage[];
  processes: number;
}

/** The names LXD's memory series take, from CgroupStats.memory's keys. */
const MEMORY_SERIES: ReadonlyArray<[string, string]> = [
  ['Active_anon', 'active_anon'],
  ['Active_file', 'active_file'],
  ['Cached', 'cache'],
  ['Dirty', 'dirty'],
  ['Inactive_anon', 'inactive_anon'],
  ['Inactive_file', 'inactive_file'],
  ['Mapped', 'mapped'],
  ['RSS', 'rss'],
  ['Shmem', 'shmem'],
  ['Unevictable', 'unevictable'],
  ['Writeback', 'writeback'],
];

/** statfs f_type magics of the filesystems a container's root lives on. */
const FS_TYPES: Record<number, string> = {
  0xef53: 'ext4',
  0x9123683e: 'btrfs',
  0x58465342: 'xfs',
  0x2fc12fc1: 'zfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlay',
  0x6a656a63: 'fakeowner',
};

/** How many containers are read at once: enough to overlap the reads, few enough to bound open files. */
const PARALLEL = 16;

export async function hostMemoryBytes(): Promise<number | undefined> {
  try {
    const m = /^MemTotal:\s+(\d+) kB/m.exec(await fsp.readFile('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** /proc/PID/net/dev: the interfaces of PID's network namespace, as it counts them. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const device = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!device || f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({
      device,
      receiveBytes: f[0]!,
      receivePackets: f[1]!,
      receiveErrs: f[2]!,
      receiveDrop: f[3]!,
      transmitBytes: f[8]!,
      transmitPackets: f[9]!,
      transmitErrs: f[10]!,
      transmitDrop: f[11]!,
    });
  }
  return out;
}

/** LXD's memory series from the cgroup's numbers (its arithmetic: free is what the limit leaves, available adds the page cache). */
export function memorySeries(stats: CgroupStats, hostTotal: number | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const m = stats.memory;
  for (const [series, key] of MEMORY_SERIES) if (m[key] !== undefined) out[series] = m[key]!;
  if (m.active_anon !== undefined || m.active_file !== undefined) out.Active = (m.active_anon ?? 0) + (m.active_file ?? 0);
  if (m.inactive_anon !== undefined || m.inactive_file !== undefined) out.Inactive = (m.inactive_anon ?? 0) + (m.inactive_file ?? 0);
  const total =
    stats.memoryLimitBytes !== undefined && hostTotal !== undefined ? Math.min(stats.memoryLimitBytes, hostTotal) : (stats.memoryLimitBytes ?? hostTotal);
  if (total !== undefined) {
    out.MemTotal = total;
    if (stats.memoryBytes !== undefined) {
      out.MemFree = Math.max(0, total - stats.memoryBytes);
      out.MemAvailable = Math.max(0, total - stats.memoryBytes + (m.cache ?? 0));
    }
  }
  out.Swap = stats.swapBytes ?? 0;
  return out;
}

async function rootFilesystem(pid: number): Promise<FilesystemUsage[]> {
  try {
    const s = await fsp.statfs(`/proc/${pid}/root`);
    return [
      {
        device: '',
        fstype: FS_TYPES[s.type] ?? `0x${s.type.toString(16)}`,
        mountpoint: '/',
        availBytes: s.bavail * s.bsize,
        freeBytes: s.bfree * s.bsize,
        sizeBytes: s.blocks * s.bsize,
      },
    ];
  } catch {
    return [];
  }
}

async function oneInstance(ctx: Context, name: string, pid: number, hostTotal: number | undefined): Promise<InstanceMetrics | undefined> {
  const cg = await cgroupsOf(ctx);
  const [stats, netDev, filesystems] = await Promise.all([
    cg.stats(name).catch(() => undefined),
    fsp.readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => ''),
    rootFilesystem(pid),
  ]);
  if (!stats) return undefined;
  return {
    name,
    cpu: stats.cpu,
    memory: memorySeries(stats, hostTotal),
    network: parseNetDev(netDev),
    filesystems,
    processes: stats.processes ?? 0,
  };
}

/**
 * The metrics of every running container that `visible` lets through (all without it), in name
 * order. A container that stops during the read is left out.
 */
export async function collectInstanceMetrics(ctx: Context, visible: (name: string) => boolean = () => true): Promise<InstanceMetrics[]> {
  const running: Array<{ name: string; pid: number }> = [];
  for (const name of listNames(ctx.paths)) {
    if (!visible(name)) continue;
    const live = liveness(ctx.paths, name);
    if (live.initAlive && live.files.init) running.push({ name, pid: live.files.init.pid });
  }
  const hostTotal = await hostMemoryBytes();
  const out: Array<InstanceMetrics | undefined> = new Array(running.length);
  let next = 0;
  const worker = async () => {
    while (next < running.length) {
      const i = next++;
      out[i] = await oneInstance(ctx, running[i]!.name, running[i]!.pid, hostTotal).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, running.length) }, worker));
  return out.filter((m): m is InstanceMetrics => m !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
