/**
 * The instances' CPU and memory from GET /1.0/metrics (LXD's OpenMetrics text): the CPU seconds
 * summed over CPUs and modes, and the memory in use as LXD's UI reads it (MemTotal - MemFree).
 * Only the series the table shows are read; the server already left out the instances a
 * restricted session may not see.
 */

export interface Usage {
  cpuSeconds: number;
  memoryBytes: number;
}

const CPU = 'lxd_cpu_seconds_total{';
const MEM_TOTAL = 'lxd_memory_MemTotal_bytes{';
const MEM_FREE = 'lxd_memory_MemFree_bytes{';

/** The value of the label "name" in a sample line (instance names need no unescaping). */
function instanceName(line: string): string | undefined {
  let i = line.indexOf('{name="');
  if (i < 0) i = line.indexOf(',name="');
  if (i < 0) return undefined;
  const start = i + 7;
  const end = line.indexOf('"', start);
  return end < 0 ? undefined : line.slice(start, end);
}

export function parseUsage(text: string): Map<string, Usage> {
  const out = new Map<string, Usage>();
  const free = new Map<string, number>();
  const at = (name: string) => out.get(name) ?? out.set(name, { cpuSeconds: 0, memoryBytes: 0 }).get(name)!;
  for (const line of text.split('\n')) {
    const family = line.startsWith(CPU) ? 'cpu' : line.startsWith(MEM_TOTAL) ? 'total' : line.startsWith(MEM_FREE) ? 'free' : undefined;
    if (!family) continue;
    const name = instanceName(line);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (name === undefined || !Number.isFinite(value)) continue;
    if (family === 'cpu') at(name).cpuSeconds += value;
    else if (family === 'total') at(name).memoryBytes += value;
    else free.set(name, value);
  }
  for (const [name, f] of free) {
    const u = out.get(name);
    if (u) u.memoryBytes = Math.max(0, u.memoryBytes - f);
  }
  return out;
}
