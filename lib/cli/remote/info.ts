import { humanBytes, humanDuration, renderValue } from '../ui/format.js';
import type { RemoteServer } from '../../client/connection.js';
import { instancePath, withRemote } from './connect.js';
import { shownStatus } from './list.js';

interface FullInstance {
  name: string;
  status: string;
  created_at?: string;
  last_used_at?: string;
  profiles?: string[];
  config?: Record<string, string>;
  expanded_config?: Record<string, string>;
  state?: {
    pid?: number;
    processes?: number;
    disk?: Record<string, { usage?: number }> | null;
    memory?: { usage?: number; usage_peak?: number; swap_usage?: number };
    cpu?: { usage?: number };
  } | null;
}

/**
 * `info REMOTE:N`: the lines of the local info, from GET /1.0/instances/N?recursion=1 (LXD's keys,
 * and tslxc's volatile.tslxc.* for what LXD has none of: a line whose data a server lacks is left
 * out). json and yaml: the API's object, as the local info prints it.
 */
export async function remoteInfo(remote: string, name: string, format: string): Promise<string> {
  const { inst, sources } = await withRemote(remote, async (s) => {
    const inst = await s.get<FullInstance>(`${instancePath(name)}?recursion=1`);
    return { inst, sources: format === 'text' ? await limitSources(s, inst) : {} };
  });
  if (format !== 'text') return renderValue(inst, format as 'json' | 'yaml');
  const c = inst.config ?? {};
  const st = inst.state ?? {};
  const running = (st.pid ?? 0) > 0;
  const fp = c['volatile.base_image'] ?? '';
  const status = shownStatus(inst);
  // LXD's last start: a start notes it as it begins, so it is within a start's time of the local
  // Started (init's own start time, which the API has no key for).
  const started = running && inst.last_used_at ? inst.last_used_at : undefined;
  const disk = st.disk?.root?.usage;
  const ex = inst.expanded_config ?? c;
  const limits = Object.keys(ex)
    .filter((k) => k.startsWith('limits.'))
    .sort();
  const lines: Array<[string, string | number | undefined]> = [
    ['Name', inst.name],
    ['Status', status.toUpperCase() + (c['volatile.tslxc.reason'] ? ` (${c['volatile.tslxc.reason']})` : '')],
    ['Image', fp ? `${c['image.alias'] ?? fp.slice(0, 12)} (${c['image.description'] ?? ''}, ${fp.slice(0, 12)})` : '(none: made empty)'],
    ['Hostname', c['volatile.tslxc.hostname']],
    ['Created', inst.created_at],
    ['Init', c['volatile.tslxc.init']],
    ['PID', running ? st.pid : undefined],
    ['Monitor PID', c['volatile.tslxc.monitor_pid']],
    ['Started', started],
    ['Uptime', started ? humanDuration(Math.max(0, Math.round((Date.now() - Date.parse(started)) / 1000))) : undefined],
    ['Last exit', running ? undefined : c['volatile.tslxc.last_exit']],
    ['Disk', disk === undefined ? undefined : humanBytes(disk)],
  ];
  if (running) {
    const m = st.memory ?? {};
    if (m.usage !== undefined)
      lines.push([
        'Memory',
        `${humanBytes(m.usage)}${m.usage_peak ? ` (peak ${humanBytes(m.usage_peak)})` : ''}${m.swap_usage !== undefined ? `, swap ${humanBytes(m.swap_usage)}` : ''}`,
      ]);
    if (st.cpu?.usage !== undefined) lines.push(['CPU time', `${(st.cpu.usage / 1e9).toFixed(2)}s`]);
    lines.push(['Processes', st.processes]);
  }
  lines.push(['Limits', limits.length ? limits.map((k) => `${k}=${ex[k]} (${sources[k] ?? 'local'})`).join(', ') : 'none']);
  lines.push(['lxcfs', c['volatile.tslxc.lxcfs']]);
  return lines
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

/**
 * Where each limit comes from, as the local info says it: "local" (the instance's own), else the
 * last of its profiles that sets it. Only when a limit comes from a profile and there are several
 * is one more request made (the profiles' configs).
 */
async function limitSources(s: RemoteServer, inst: FullInstance): Promise<Record<string, string>> {
  const own = inst.config ?? {};
  const profiles = inst.profiles ?? [];
  const inherited = Object.keys(inst.expanded_config ?? {}).filter((k) => k.startsWith('limits.') && !(k in own));
  const out: Record<string, string> = {};
  if (!inherited.length || !profiles.length) return out;
  if (profiles.length === 1) {
    for (const k of inherited) out[k] = `profile:${profiles[0]}`;
    return out;
  }
  const all = await s.get<Array<{ name: string; config?: Record<string, string> }>>('/1.0/profiles?recursion=1').catch(() => []);
  const byName = new Map(all.map((p) => [p.name, p.config ?? {}]));
  for (const k of inherited) {
    const from = [...profiles].reverse().find((p) => byName.get(p)?.[k] !== undefined);
    if (from) out[k] = `profile:${from}`;
  }
  return out;
}
