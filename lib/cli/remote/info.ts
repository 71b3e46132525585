import { humanBytes, renderValue } from '../ui/format.js';
import { instancePath, withRemote } from './connect.js';

interface FullInstance {
  name: string;
  status: string;
  created_at?: string;
  last_used_at?: string;
  config?: Record<string, string>;
  state?: { pid?: number; processes?: number; memory?: { usage?: number; usage_peak?: number; swap_usage?: number }; cpu?: { usage?: number } } | null;
  snapshots?: Array<{ name: string }> | null;
}

/** `info REMOTE:N`: the local info's lines that the API carries (json and yaml: the API's object). */
export async function remoteInfo(remote: string, name: string, format: string): Promise<string> {
  const inst = await withRemote(remote, (s) => s.get<FullInstance>(`${instancePath(name)}?recursion=1`));
  if (format !== 'text') return renderValue(inst, format as 'json' | 'yaml');
  const c = inst.config ?? {};
  const st = inst.state ?? {};
  const running = (st.pid ?? 0) > 0;
  const lines: Array<[string, string | number | undefined]> = [
    ['Name', inst.name],
    ['Remote', remote],
    ['Status', inst.status.toUpperCase()],
    ['Image', c['volatile.base_image'] ? `${c['image.description'] ?? ''} (${c['volatile.base_image'].slice(0, 12)})`.trim() : undefined],
    ['Created', inst.created_at],
    ['PID', running ? st.pid : undefined],
    [
      'Memory',
      running && st.memory?.usage !== undefined
        ? `${humanBytes(st.memory.usage)}${st.memory.usage_peak ? ` (peak ${humanBytes(st.memory.usage_peak)})` : ''}`
        : undefined,
    ],
    ['CPU time', running && st.cpu?.usage !== undefined ? `${(st.cpu.usage / 1e9).toFixed(2)}s` : undefined],
    ['Processes', running ? st.processes : undefined],
    ['Snapshots', inst.snapshots?.length ? inst.snapshots.map((x) => x.name).join(', ') : undefined],
  ];
  return lines
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}
