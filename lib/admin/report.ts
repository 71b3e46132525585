import fs from 'node:fs';
import os from 'node:os';
import type { Paths } from '../state/paths.js';
import { hostFeatures, type HostFeatures } from '../host/features.js';
import { onlineCpus } from '../host/facts.js';
import { formatCpuList } from '../util/units.js';
import { checkHostLimits, type LimitCheck } from '../host/sysctl.js';
import { listPools } from '../storage/pool.js';
import { poolDataDir } from '../storage/manage.js';

/** `tslxc host`: the machine as tslxc sees it. */
export interface HostReport {
  hostname: string;
  kernel: string;
  distribution: string;
  architecture: string;
  cpu: { model: string; count: number; online: string };
  memory: { totalBytes: number; availableBytes: number; swapTotalBytes: number };
  storage: Array<{ name: string; driver?: string; path: string; freeBytes?: number; sizeBytes?: number }>;
  features: HostFeatures;
  /** the host limits containers share, against LXD's recommended values */
  limits: LimitCheck[];
}

/**
 * systeminformation is loaded here, on demand: it is large, and only `tslxc host` (and
 * `info --host`) need it. Its figures are cross-checked with the os module, which is what limits
 * are validated against.
 */
export async function hostReport(p: Paths): Promise<HostReport> {
  const si = (await import('systeminformation')).default;
  const [osInfo, cpu, mem] = await Promise.all([si.osInfo(), si.cpu(), si.mem()]);
  const online = onlineCpus();
  return {
    hostname: os.hostname(),
    kernel: osInfo.kernel || os.release(),
    distribution: [osInfo.distro, osInfo.release, osInfo.codename ? `(${osInfo.codename})` : ''].filter(Boolean).join(' '),
    architecture: osInfo.arch || os.arch(),
    cpu: { model: [cpu.manufacturer, cpu.brand].filter(Boolean).join(' '), count: online.length, online: formatCpuList(online) },
    memory: { totalBytes: mem.total || os.totalmem(), availableBytes: mem.available, swapTotalBytes: mem.swaptotal },
    storage: await storage(p),
    features: hostFeatures(p),
    limits: checkHostLimits(),
  };
}

/** The state dir and each storage pool, with free space. */
async function storage(p: Paths): Promise<HostReport['storage']> {
  const out: HostReport['storage'] = [{ name: '(state dir)', path: p.stateDir, ...space(p.stateDir) }];
  for (const pool of listPools(p)) {
    const dir = pool.config.source || poolDataDir(p, pool.name);
    out.push({ name: pool.name, driver: pool.driver, path: dir, ...space(fs.existsSync(dir) ? dir : p.stateDir) });
  }
  return out;
}

function space(dir: string): { freeBytes?: number; sizeBytes?: number } {
  let d = dir;
  while (!fs.existsSync(d) && d !== '/') d = d.replace(/\/[^/]*$/, '') || '/';
  try {
    const s = fs.statfsSync(d);
    return { freeBytes: s.bavail * s.bsize, sizeBytes: s.blocks * s.bsize };
  } catch {
    return {};
  }
}
