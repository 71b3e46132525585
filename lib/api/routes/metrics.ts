import type { Context } from '../../state/context.js';
import type { InstanceMetrics } from '../../instance/metrics.js';
import { allowsInstance } from '../access.js';
import type { ApiRequest, ApiResult, Route } from '../types.js';

/**
 * GET /1.0/metrics: LXD 5.0.2's instance metrics in the Prometheus/OpenMetrics text format, with
 * its names, types, labels and order (test/fixtures/lxd-5.0.2/metrics.txt is its answer), so a
 * scrape config or a Grafana dashboard made for LXD works unchanged. Scrapes that come close
 * together share one collection; a restricted certificate gets only its instances' series.
 */

/** Scrapes within this share one collection (LXD keeps its own for 8 s). */
const CACHE_MS = 1500;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples(m: InstanceMetrics): Array<{ labels: Record<string, string>; value: number }>;
}

const base = (m: InstanceMetrics) => ({ name: m.name, project: 'default', type: 'container' });

const memory = (series: string, help: string): Family => ({
  name: `lxd_memory_${series}_bytes`,
  help,
  type: 'gauge',
  samples: (m) => (m.memory[series] === undefined ? [] : [{ labels: base(m), value: m.memory[series]! }]),
});

const network = (name: string, help: string, field: keyof Omit<InstanceMetrics['network'][number], 'device'>): Family => ({
  name: `lxd_network_${name}_total`,
  help,
  type: 'counter',
  samples: (m) => m.network.map((n) => ({ labels: { device: n.device, ...base(m) }, value: n[field] })),
});

// LXD 5.0.2 labels its filesystem series without "type".
const filesystem = (name: string, help: string, field: 'availBytes' | 'freeBytes' | 'sizeBytes'): Family => ({
  name: `lxd_filesystem_${name}_bytes`,
  help,
  type: 'gauge',
  samples: (m) =>
    m.filesystems.map((f) => ({ labels: { device: f.device, fstype: f.fstype, mountpoint: f.mountpoint, name: m.name, project: 'default' }, value: f[field] })),
});

/** In LXD's order. */
const FAMILIES: Family[] = [
  {
    name: 'lxd_cpu_seconds_total',
    help: 'CPU time used, in seconds.',
    type: 'counter',
    samples: (m) =>
      m.cpu.flatMap((c) => [
        { labels: { cpu: String(c.cpu), mode: 'system', ...base(m) }, value: c.system },
        { labels: { cpu: String(c.cpu), mode: 'user', ...base(m) }, value: c.user },
      ]),
  },
  filesystem('avail', 'Space available to unprivileged users, in bytes.', 'availBytes'),
  filesystem('free', 'Free space, in bytes.', 'freeBytes'),
  filesystem('size', 'Size of the filesystem, in bytes.', 'sizeBytes'),
  memory('Active_anon', 'Anonymous memory on the active LRU list.'),
  memory('Active_file', 'File-backed memory on the active LRU list.'),
  memory('Active', 'Memory on the active LRU list.'),
  memory('Cached', 'Page cache memory.'),
  memory('Dirty', 'Memory waiting to be written back to disk.'),
  memory('Inactive_anon', 'Anonymous memory on the inactive LRU list.'),
  memory('Inactive_file', 'File-backed memory on the inactive LRU list.'),
  memory('Inactive', 'Memory on the inactive LRU list.'),
  memory('Mapped', 'Mapped memory.'),
  memory('MemAvailable', 'Available memory.'),
  memory('MemFree', 'Free memory.'),
  memory('MemTotal', 'Total memory (the limit, or the host memory without one).'),
  memory('RSS', 'Anonymous and swap cache memory.'),
  memory('Shmem', 'Swap-backed cached filesystem data.'),
  memory('Swap', 'Swap used.'),
  memory('Unevictable', 'Unevictable memory.'),
  memory('Writeback', 'Memory being written back to disk.'),
  network('receive_bytes', 'Bytes received on an interface.', 'receiveBytes'),
  network('receive_drop', 'Received packets dropped on an interface.', 'receiveDrop'),
  network('receive_errs', 'Receive errors on an interface.', 'receiveErrs'),
  network('receive_packets', 'Packets received on an interface.', 'receivePackets'),
  network('transmit_bytes', 'Bytes sent on an interface.', 'transmitBytes'),
  network('transmit_drop', 'Sent packets dropped on an interface.', 'transmitDrop'),
  network('transmit_errs', 'Send errors on an interface.', 'transmitErrs'),
  network('transmit_packets', 'Packets sent on an interface.', 'transmitPackets'),
  {
    name: 'lxd_procs_total',
    help: 'Processes in the instance.',
    type: 'gauge',
    samples: (m) => [{ labels: base(m), value: m.processes }],
  },
];

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(v);
}

/** The text format: each family's HELP and TYPE, its samples with labels sorted by name, then "# EOF". */
export function renderMetrics(metrics: InstanceMetrics[]): string {
  const lines: string[] = [];
  for (const f of FAMILIES) {
    const samples = metrics.flatMap((m) => f.samples(m));
    if (!samples.length) continue;
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of samples) {
      const labels = Object.keys(s.labels)
        .sort()
        .map((k) => `${k}="${escapeLabel(s.labels[k]!)}"`)
        .join(',');
      lines.push(`${f.name}{${labels}} ${formatValue(s.value)}`);
    }
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

/** The last collection per installation, or the one under way. */
const cache = new Map<string, { at: number; metrics: Promise<InstanceMetrics[]> }>();

function collected(ctx: Context): Promise<InstanceMetrics[]> {
  const key = ctx.paths.stateDir;
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.metrics;
  const metrics = import('../../instance/metrics.js').then((lib) => lib.collectInstanceMetrics(ctx));
  const entry = { at: Date.now(), metrics };
  cache.set(key, entry);
  // A failed collection is not kept: the next scrape tries again.
  metrics.catch(() => {
    if (cache.get(key) === entry) cache.delete(key);
  });
  return metrics;
}

async function getMetrics(req: ApiRequest): Promise<ApiResult> {
  const all = await collected(req.ctx);
  const visible = req.identity.instances === undefined ? all : all.filter((m) => allowsInstance(req.identity, m.name));
  return { type: 'raw', status: 200, headers: { 'Content-Type': 'text/plain' }, body: Buffer.from(renderMetrics(visible)) };
}

export const routes: Route[] = [{ method: 'GET', path: '/1.0/metrics', handler: getMetrics }];

export const extensions = ['metrics'];
