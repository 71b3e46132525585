import fs from 'node:fs';
import { TslxcError } from '../../errors.js';
import { instancePath, withRemote } from './connect.js';

/** `file push SRC REMOTE:N/PATH` (POST .../files, the mode and owner in X-LXD-* headers). */
export async function remotePush(
  remote: string,
  name: string,
  inner: string,
  source: string | { stdin: NodeJS.ReadableStream },
  opts: { mode?: number; uid?: number; gid?: number; createDirs?: boolean },
): Promise<void> {
  let body: Buffer;
  let mode = opts.mode;
  if (typeof source === 'string') {
    let st: fs.Stats;
    try {
      st = fs.statSync(source);
      body = fs.readFileSync(source);
    } catch (err) {
      throw new TslxcError(`Cannot read ${source}`, (err as Error).message);
    }
    mode ??= st.mode & 0o7777;
  } else {
    const chunks: Buffer[] = [];
    for await (const c of source.stdin) chunks.push(Buffer.from(c as Buffer));
    body = Buffer.concat(chunks);
  }
  await withRemote(remote, async (s) => {
    if (opts.createDirs) {
      const parts = inner.split('/').filter(Boolean).slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = `/${parts.slice(0, i).join('/')}`;
        const r = await s.raw('GET', `${instancePath(name)}/files?path=${encodeURIComponent(dir)}`);
        if (r.status === 404)
          await s.call('POST', `${instancePath(name)}/files?path=${encodeURIComponent(dir)}`, undefined, { 'x-lxd-type': 'directory', 'x-lxd-mode': '0755' });
      }
    }
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-lxd-type': 'file', 'x-lxd-write': 'overwrite' };
    headers['x-lxd-mode'] = (mode ?? 0o644).toString(8).padStart(4, '0');
    if (opts.uid !== undefined) headers['x-lxd-uid'] = String(opts.uid);
    if (opts.gid !== undefined) headers['x-lxd-gid'] = String(opts.gid);
    const r = await s.raw('POST', `${instancePath(name)}/files?path=${encodeURIComponent(inner)}`, body, headers);
    if (r.status >= 400) throw s.failure(r.status, errorOf(r.body) ?? `HTTP ${r.status}`);
  });
}

/** `file pull REMOTE:N/PATH TARGET` (GET .../files); TARGET "-" is stdout, a directory gets the file's name. */
export async function remotePull(remote: string, name: string, inner: string, targetPath: string): Promise<void> {
  const r = await withRemote(remote, (s) => s.raw('GET', `${instancePath(name)}/files?path=${encodeURIComponent(inner)}`).then((r) => ({ ...r, s })));
  if (r.status >= 400) throw r.s.failure(r.status, errorOf(r.body) ?? `HTTP ${r.status}`);
  if (r.headers['x-lxd-type'] === 'directory') throw new TslxcError(`${name}${inner} is a directory`, undefined, 'pull a file');
  if (targetPath === '-') {
    process.stdout.write(r.body);
    return;
  }
  let dest = targetPath;
  if (fs.existsSync(dest) && fs.statSync(dest).isDirectory()) dest = `${dest.replace(/\/+$/, '')}/${inner.split('/').pop()}`;
  const mode = Number.parseInt(String(r.headers['x-lxd-mode'] ?? '0644'), 8);
  fs.writeFileSync(dest, r.body, { mode: Number.isFinite(mode) ? mode & 0o777 : 0o644 });
}

function errorOf(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString('utf8')) as { error?: string }).error || undefined;
  } catch {
    return undefined;
  }
}
