import { renderRows, type Format } from '../ui/format.js';
import { instancePath, withRemote } from './connect.js';

/** Snapshots on a remote: POST/GET/DELETE .../snapshots, restore = PUT the instance with {restore}. */
export async function remoteSnapshotCreate(remote: string, name: string, snapshot?: string): Promise<string> {
  return withRemote(remote, async (s) => {
    let snap = snapshot;
    if (!snap) {
      // The server's own default (snapN) is not echoed back by every server: pick it as it would.
      const have = new Set((await s.get<string[]>(`${instancePath(name)}/snapshots`)).map((u) => decodeURIComponent(u.split('/').pop()!)));
      let n = 0;
      while (have.has(`snap${n}`)) n++;
      snap = `snap${n}`;
    }
    await s.run('POST', `${instancePath(name)}/snapshots`, { name: snap, stateful: false });
    return snap;
  });
}

export async function remoteSnapshotList(remote: string, name: string, format: Format): Promise<string> {
  const rows = await withRemote(remote, (s) => s.get<Array<{ name: string; created_at: string }>>(`${instancePath(name)}/snapshots?recursion=1`));
  return renderRows(
    rows,
    [
      { header: 'NAME', value: (r) => r.name },
      { header: 'CREATED', value: (r) => r.created_at },
    ],
    format,
  );
}

export async function remoteSnapshotRestore(remote: string, name: string, snapshot: string): Promise<void> {
  await withRemote(remote, (s) => s.run('PUT', instancePath(name), { restore: snapshot }));
}

export async function remoteSnapshotDelete(remote: string, name: string, snapshot: string): Promise<void> {
  await withRemote(remote, (s) => s.run('DELETE', `${instancePath(name)}/snapshots/${encodeURIComponent(snapshot)}`));
}
