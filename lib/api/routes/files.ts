import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { allowsInstance } from '../access.js';
import { ApiError, sync, type ApiRequest, type ApiResult, type Route } from '../types.js';
import type { FileTarget } from '../../instance/files.js';

/**
 * GET/POST/DELETE /1.0/instances/{name}/files?path=P: LXD's file API. Every operation is the
 * helper's file mode (lib/instance/files.ts fileTarget), so every path is resolved by the kernel
 * inside the container, running or stopped: a symlink in the container never leads the server
 * outside its root.
 */

/** The largest upload kept; beyond it the upload is refused and nothing is written. */
export const FILE_UPLOAD_LIMIT = 4 * 1024 ** 3;
/** A symlink's target (the body of a symlink POST). */
const SYMLINK_TARGET_LIMIT = 4096;
/** A directory listing is buffered to answer it as JSON. */
const LISTING_LIMIT = 16 << 20;

interface Helper {
  helper: string;
  target: FileTarget;
  toContainer(kind: 'uid' | 'gid', id: number): number;
  toHost(kind: 'uid' | 'gid', id: number): number;
}

function innerPath(req: ApiRequest): string {
  const p = req.query.get('path');
  if (!p || p.includes('\0')) throw new ApiError(400, 'The "path" parameter must be a path inside the instance');
  // The 5.0 client's `file pull` and `file delete` send the path without its leading "/": LXD
  // takes a relative path from the root, as it does.
  return p.startsWith('/') ? p : `/${p}`;
}

async function helperFor(req: ApiRequest): Promise<Helper> {
  const name = req.params.name;
  if (!allowsInstance(req.identity, name)) throw new ApiError(404, 'Instance not found');
  const [{ requireInstance }, { fileTarget }, { helperPath }, idmap] = await Promise.all([
    import('../../state/runtime.js'),
    import('../../instance/files.js'),
    import('../../state/helper.js'),
    import('../../config/idmap.js'),
  ]);
  try {
    requireInstance(req.ctx.paths, name);
  } catch {
    throw new ApiError(404, 'Instance not found');
  }
  const target = await fileTarget(req.ctx, name);
  const map = target.onDisk;
  return {
    helper: helperPath(),
    target,
    // Unmapped ids show as nobody, as inside the container.
    toContainer: (kind, id) => (map ? (idmap.toContainer(map[kind], id) ?? 65534) : id),
    toHost: (kind, id) => {
      if (!map) return id;
      const host = idmap.toHost(map[kind], id);
      if (host === undefined) throw new ApiError(400, `${kind} ${id} is not mapped in this instance`);
      return host;
    },
  };
}

/** The helper's failure as an HTTP error: a missing path is 404, anything else the request's fault. */
function failure(stderr: string): ApiError {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const line = (lines.reverse().find((l) => l.startsWith('tslxc-helper:')) ?? lines[0] ?? 'the file operation failed').replace(/^tslxc-helper:\s*/, '');
  if (/: (No such file or directory|Not a directory)$/.test(line)) return new ApiError(404, `Not found: ${line}`);
  return new ApiError(400, line);
}

interface Run {
  code: number;
  stderr: string;
}

/** Runs the helper's file mode to its end, with stdin from `input` (a string or the request, bounded). */
function runFile(h: Helper, args: string[], input?: { body: Readable; limit: number } | string, stdout?: (chunk: Buffer) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(h.helper, ['file', ...h.target.args, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    let stderr = '';
    let failed: string | undefined;
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 8192) stderr += c.toString();
    });
    child.stdout!.on('data', (c: Buffer) => stdout?.(c));
    child.stdin?.on('error', () => {});
    // A cut-short upload: the helper is ended before its input is, so it never takes the part it
    // read for all of it (it removes its temporary file on SIGTERM).
    const abort = (why: string): void => {
      if (failed) return;
      failed = why;
      child.kill('SIGTERM');
    };
    if (typeof input === 'string') child.stdin!.end(input);
    else if (input) {
      let got = 0;
      const body = input.body;
      body.on('data', (c: Buffer) => {
        got += c.length;
        if (got > input.limit) {
          body.pause();
          return abort(`the upload is larger than ${input.limit} bytes`);
        }
        if (!child.stdin!.write(c)) {
          body.pause();
          child.stdin!.once('drain', () => body.resume());
        }
      });
      body.on('end', () => {
        if (!failed) child.stdin!.end();
      });
      body.on('aborted', () => abort('the upload was cut short'));
      body.on('error', () => abort('the upload was cut short'));
      body.on('close', () => {
        if (!body.readableEnded) abort('the upload was cut short');
      });
    }
    child.on('error', (err) => resolve({ code: 255, stderr: err.message }));
    child.on('close', (code) => {
      child.stdin?.destroy();
      if (failed) resolve({ code: 1, stderr: `tslxc-helper: ${failed}` });
      else resolve({ code: code ?? 1, stderr });
    });
  });
}

/** LXD's sync envelope, for the directory listing that must also carry the X-LXD-* headers. */
function syncBody(metadata: unknown): Buffer {
  return Buffer.from(JSON.stringify({ type: 'sync', status: 'Success', status_code: 200, operation: '', error_code: 0, error: '', metadata }));
}

async function getFile(req: ApiRequest): Promise<ApiResult> {
  const inner = innerPath(req);
  const h = await helperFor(req);
  const child = spawn(h.helper, ['file', ...h.target.args, '--get', inner], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 8192) stderr += c.toString();
  });
  const closed = new Promise<number>((resolve) => {
    child.on('error', () => resolve(255));
    child.on('close', (code) => resolve(code ?? 1));
  });
  // The first line says what the path is; a file's content then streams as the body.
  const header = await new Promise<{ line: string; rest: Buffer } | undefined>((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf(10);
      if (nl >= 0) {
        child.stdout.off('data', onData);
        child.stdout.pause();
        resolve({ line: buf.subarray(0, nl).toString(), rest: buf.subarray(nl + 1) });
      } else if (buf.length > 256) resolve(undefined);
    };
    child.stdout.on('data', onData);
    child.stdout.on('end', () => resolve(undefined));
    void closed.then(() => resolve(undefined));
  });
  const m = header && /^(file|directory|symlink) (\d+) (\d+) ([0-7]{4})$/.exec(header.line);
  if (!header || !m) {
    child.kill('SIGKILL');
    await closed;
    throw failure(stderr);
  }
  const [, type, uid, gid, mode] = m;
  const headers: Record<string, string> = {
    'X-LXD-uid': String(h.toContainer('uid', Number(uid))),
    'X-LXD-gid': String(h.toContainer('gid', Number(gid))),
    'X-LXD-mode': mode,
    'X-LXD-type': type,
  };
  if (type === 'file') {
    const body = new PassThrough();
    body.write(header.rest);
    child.stdout.pipe(body);
    // A read failing midway (an I/O error) cuts the body short: the client sees a broken transfer.
    void closed.then((code) => {
      if (code !== 0) body.destroy(new Error(stderr));
    });
    return { type: 'raw', status: 200, headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body };
  }
  const chunks: Buffer[] = [header.rest];
  let size = header.rest.length;
  child.stdout.on('data', (c: Buffer) => {
    size += c.length;
    if (size > LISTING_LIMIT) child.kill('SIGKILL');
    else chunks.push(c);
  });
  child.stdout.resume();
  const code = await closed;
  if (code !== 0 || size > LISTING_LIMIT) throw size > LISTING_LIMIT ? new ApiError(400, `${inner}: the listing is too long`) : failure(stderr);
  const data = Buffer.concat(chunks);
  if (type === 'symlink') return { type: 'raw', status: 200, headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: data };
  const names = data.length
    ? data
        .subarray(0, data.length - 1)
        .toString()
        .split('\0')
    : [];
  return { type: 'raw', status: 200, headers: { ...headers, 'Content-Type': 'application/json' }, body: syncBody(names.sort()) };
}

function header(req: ApiRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function idHeader(req: ApiRequest, name: string): number | undefined {
  const v = header(req, name);
  if (v === undefined || v === '' || v === '-1') return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xfffffffe) throw new ApiError(400, `${name} must be a number`);
  return Number(v);
}

async function readSmall(body: Readable, limit: number): Promise<string> {
  let got = '';
  for await (const c of body) {
    got += (c as Buffer).toString();
    if (got.length > limit) throw new ApiError(400, `the body is longer than ${limit} bytes`);
  }
  return got;
}

async function postFile(req: ApiRequest): Promise<ApiResult> {
  const inner = innerPath(req);
  const type = header(req, 'X-LXD-type') || 'file';
  if (!['file', 'directory', 'symlink'].includes(type)) throw new ApiError(400, `X-LXD-type must be file, directory or symlink, not "${type}"`);
  const write = header(req, 'X-LXD-write') || 'overwrite';
  if (write !== 'overwrite' && write !== 'append') throw new ApiError(400, `X-LXD-write must be overwrite or append, not "${write}"`);
  const modeText = header(req, 'X-LXD-mode');
  if (modeText !== undefined && modeText !== '' && !/^[0-7]{1,4}$/.test(modeText)) throw new ApiError(400, 'X-LXD-mode must be an octal mode');
  const mode = modeText ? parseInt(modeText, 8) : type === 'directory' ? 0o755 : 0o644;
  const uid = idHeader(req, 'X-LXD-uid') ?? 0;
  const gid = idHeader(req, 'X-LXD-gid') ?? 0;
  const h = await helperFor(req);
  const owner = ['--uid', String(h.toHost('uid', uid)), '--gid', String(h.toHost('gid', gid))];
  let r: Run;
  if (type === 'directory') {
    req.raw.resume();
    r = await runFile(h, ['--make-dir', inner, '--mode', mode.toString(8), ...owner]);
  } else if (type === 'symlink') {
    const target = await readSmall(req.raw, SYMLINK_TARGET_LIMIT);
    if (!target || target.includes('\0')) throw new ApiError(400, 'a symlink needs its target as the body');
    r = await runFile(h, ['--write', inner, '--symlink', target, ...owner]);
  } else {
    const args = ['--write', inner, '--mode', mode.toString(8), ...owner];
    if (write === 'append') args.push('--append');
    const length = header(req, 'Content-Length');
    if (length !== undefined && /^\d+$/.test(length)) {
      if (Number(length) > FILE_UPLOAD_LIMIT) throw new ApiError(413, `the upload is larger than ${FILE_UPLOAD_LIMIT} bytes`);
      // Written only when exactly this many bytes arrived (overwrite: a temporary file renamed).
      if (write === 'overwrite') args.push('--size', length);
    }
    r = await runFile(h, args, { body: req.raw, limit: FILE_UPLOAD_LIMIT });
  }
  if (r.code !== 0) {
    if (/larger than/.test(r.stderr)) throw new ApiError(413, r.stderr.replace(/^tslxc-helper:\s*/, ''));
    throw failure(r.stderr);
  }
  req.events.lifecycle('instance-file-pushed', `/1.0/instances/${req.params.name}`, { path: inner, type });
  return sync({});
}

async function deleteFile(req: ApiRequest): Promise<ApiResult> {
  const inner = innerPath(req);
  if (inner.replace(/\/+$/, '') === '') throw new ApiError(400, 'The root directory cannot be removed');
  const h = await helperFor(req);
  const r = await runFile(h, ['--delete', inner]);
  if (r.code !== 0) throw failure(r.stderr);
  req.events.lifecycle('instance-file-deleted', `/1.0/instances/${req.params.name}`, { path: inner });
  return sync({});
}

// LXD serves the pre-`instances` paths too; a 5.0 client uses them when `instances` is not listed.
export const routes: Route[] = ['instances', 'containers'].flatMap((kind): Route[] => [
  { method: 'GET', path: `/1.0/${kind}/{name}/files`, handler: getFile },
  { method: 'POST', path: `/1.0/${kind}/{name}/files`, handler: postFile },
  { method: 'DELETE', path: `/1.0/${kind}/{name}/files`, handler: deleteFile },
]);

export const extensions: string[] = ['directory_manipulation', 'file_delete', 'file_symlinks', 'file_append'];
