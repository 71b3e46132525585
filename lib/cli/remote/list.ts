import path from 'node:path';
import { renderRows, type Format } from '../ui/format.js';
import type { RemoteServer } from '../../client/connection.js';
import { withRemote } from './connect.js';
import { clientDir, completionCacheFile } from '../../client/config.js';
import { mkdirp, writeFileAtomic } from '../../util/fs.js';

/** An instance as GET /1.0/instances?recursion=2 gives it (the fields `list` shows). */
export interface RemoteInstance {
  name: string;
  status: string;
  last_used_at?: string;
  config?: Record<string, string>;
  state?: { pid?: number; network?: Record<string, { addresses?: Array<{ family: string; address: string; scope: string }> }> | null } | null;
}

/** `list REMOTE:[FILTER]`: the table of the local list, from the server's objects (json and yaml: the objects). */
export async function remoteList(remote: string, format: Format, filter?: string): Promise<string> {
  const { rows, images } = await withRemote(remote, async (s) => {
    const all = await s.get<RemoteInstance[]>('/1.0/instances?recursion=2');
    if (!filter) rememberNames(remote, all);
    const rows = filter ? all.filter((r) => r.name.startsWith(filter)) : all;
    return { rows, images: format === 'json' || format === 'yaml' ? new Map<string, string>() : await aliasesFor(s, rows) };
  });
  if (format === 'json' || format === 'yaml') return renderRows(rows, [], format);
  return renderRows<RemoteInstance>(
    rows,
    [
      { header: 'NAME', value: (r) => r.name },
      { header: 'STATE', value: (r) => shownStatus(r).toUpperCase() },
      { header: 'IPV4', value: (r) => ipv4(r).join(', ') },
      { header: 'IMAGE', value: (r) => imageOf(r, images) },
      { header: 'PID', value: (r) => r.state?.pid || undefined },
    ],
    format,
  );
}

/**
 * The status as the local list shows it: a stopped container that never started is "Created"
 * there. LXD's API folds that into Stopped, and says "never" with a zero last_used_at (tslxc's
 * 1970, LXD's Go zero time).
 */
export function shownStatus(r: { status: string; last_used_at?: string }): string {
  return r.status === 'Stopped' && /^(1970-01-01T00:00:00|0001-01-01T00:00:00)/.test(r.last_used_at ?? '') ? 'Created' : r.status;
}

/** What the local list shows: the alias the container was made from, else the image's short fingerprint. */
function imageOf(r: RemoteInstance, aliases: Map<string, string>): string {
  const fp = r.config?.['volatile.base_image'] ?? '';
  return r.config?.['image.alias'] ?? aliases.get(fp) ?? fp.slice(0, 12);
}

/**
 * A tslxc server names each instance's alias in its config (image.alias); LXD keeps none. For
 * the instances without one, one request for the server's images gives each fingerprint's alias
 * (the first, as lxc image list shows them), never one request per instance.
 */
async function aliasesFor(s: RemoteServer, rows: RemoteInstance[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!rows.some((r) => r.config?.['image.alias'] === undefined && r.config?.['volatile.base_image'])) return out;
  const images = await s.get<Array<{ fingerprint: string; aliases?: Array<{ name: string }> | null }>>('/1.0/images?recursion=1').catch(() => []);
  for (const img of images) if (img.aliases?.[0]) out.set(img.fingerprint, img.aliases[0].name);
  return out;
}

/** The names for a Tab after "REMOTE:" (lib/cli/complete.ts, native/clicomplete.c); a list never fails for it. */
function rememberNames(remote: string, all: RemoteInstance[]): void {
  try {
    const file = completionCacheFile(clientDir(), remote);
    mkdirp(path.dirname(file), 0o700);
    // "REMOTE:NAME<tab>KIND", the kind of argument it completes (a running or a stopped container):
    // the native completion prints the lines that fit without knowing what a status means.
    const kind = (r: RemoteInstance) => (r.status === 'Running' || r.status === 'Frozen' ? 'running container' : 'stopped container');
    writeFileAtomic(file, all.map((r) => `${remote}:${r.name}\t${kind(r)}\n`).join(''), 0o600);
  } catch {
    // completion offers what it had
  }
}

function ipv4(r: RemoteInstance): string[] {
  return Object.entries(r.state?.network ?? {})
    .filter(([nic]) => nic !== 'lo')
    .flatMap(([, n]) => (n.addresses ?? []).filter((a) => a.family === 'inet' && a.scope === 'global').map((a) => a.address));
}
