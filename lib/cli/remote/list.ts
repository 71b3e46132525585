import { renderRows, type Format } from '../ui/format.js';
import { withRemote } from './connect.js';

/** An instance as GET /1.0/instances?recursion=2 gives it (the fields `list` shows). */
export interface RemoteInstance {
  name: string;
  status: string;
  config?: Record<string, string>;
  state?: { pid?: number; network?: Record<string, { addresses?: Array<{ family: string; address: string; scope: string }> }> | null } | null;
}

/** `list REMOTE:[FILTER]`: the table of the local list, from the server's objects (json and yaml: the objects). */
export async function remoteList(remote: string, format: Format, filter?: string): Promise<string> {
  const all = await withRemote(remote, (s) => s.get<RemoteInstance[]>('/1.0/instances?recursion=2'));
  const rows = filter ? all.filter((r) => r.name.startsWith(filter)) : all;
  if (format === 'json' || format === 'yaml') return renderRows(rows, [], format);
  return renderRows<RemoteInstance>(
    rows,
    [
      { header: 'NAME', value: (r) => r.name },
      { header: 'STATE', value: (r) => r.status.toUpperCase() },
      { header: 'IPV4', value: (r) => ipv4(r).join(', ') },
      { header: 'IMAGE', value: (r) => r.config?.['image.alias'] ?? (r.config?.['volatile.base_image'] ?? '').slice(0, 12) },
      { header: 'PID', value: (r) => r.state?.pid || undefined },
    ],
    format,
  );
}

function ipv4(r: RemoteInstance): string[] {
  return Object.entries(r.state?.network ?? {})
    .filter(([nic]) => nic !== 'lo')
    .flatMap(([, n]) => (n.addresses ?? []).filter((a) => a.family === 'inet' && a.scope === 'global').map((a) => a.address));
}
