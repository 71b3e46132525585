import os from 'node:os';
import { expandInstance } from '../profile/expand.js';
import { listStates } from './status.js';
import { loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { parseSize } from '../util/units.js';
import { cgroupsOf } from '../cgroup/context.js';

export interface TopRow {
  name: string;
  status: string;
  /** CPUs' worth used over the sample (1.0 = one full CPU) */
  cpu?: number;
  memoryBytes?: number;
  memoryLimitBytes?: number;
  processes?: number;
  processLimit?: number;
}

/**
 * One `tslxc top` frame: every running container's usage, CPU from the difference of two reads
 * of its cgroup CPU time `intervalMs` apart.
 */
export async function topSnapshot(ctx: Context, intervalMs = 1000): Promise<TopRow[]> {
  const cg = await cgroupsOf(ctx);
  const running = (await listStates(ctx)).filter((s) => s.status === 'Running' || s.status === 'Frozen');
  const first = new Map<string, number | undefined>();
  for (const s of running) first.set(s.name, (await cg.usage(s.name).catch(() => ({ cpuTimeNs: undefined }))).cpuTimeNs);
  const t0 = process.hrtime.bigint();
  if (running.length > 0) await new Promise((r) => setTimeout(r, intervalMs));
  const elapsed = Number(process.hrtime.bigint() - t0);
  const rows: TopRow[] = [];
  for (const s of running) {
    const u = await cg.usage(s.name).catch(() => undefined);
    const c0 = first.get(s.name);
    const row: TopRow = { name: s.name, status: s.status, memoryBytes: u?.memoryBytes, processes: u?.processes };
    if (u?.cpuTimeNs !== undefined && c0 !== undefined) row.cpu = Math.max(0, (u.cpuTimeNs - c0) / elapsed);
    try {
      const cfg = expandInstance(ctx.paths, loadConfig(ctx.paths, s.name)).config;
      if (cfg['limits.memory']) row.memoryLimitBytes = parseSize(cfg['limits.memory'], { total: os.totalmem() });
      if (cfg['limits.processes']) row.processLimit = Number(cfg['limits.processes']);
    } catch {
      // a profile gone missing: show usage without limits
    }
    rows.push(row);
  }
  return rows.sort((a, b) => (b.cpu ?? 0) - (a.cpu ?? 0) || a.name.localeCompare(b.name));
}
