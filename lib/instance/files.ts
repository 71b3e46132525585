import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirInRoot, resolveInRoot } from '../util/rootfs.js';
import { loadConfig } from './config.js';
import type { Context } from './context.js';
import { hostAccess } from '../storage/instance.js';
import { helperError, helperPath } from './helper.js';
import { liveness } from './runtime.js';
import { onDiskMap } from './idmap.js';
import { toHost } from '../config/idmap.js';

/**
 * file push/pull. A path is always resolved inside the container's root: for a running container
 * the helper enters the container's mount namespace and opens the path there (so the kernel, not
 * us, confines it, with no window for a swapped symlink); for a stopped one no process can change
 * the tree, and a RESOLVE_IN_ROOT-style walk on the host is enough.
 */
export interface PushOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  createDirs?: boolean;
}

function checkInner(p: string): string {
  if (!p.startsWith('/')) throw new TslxcError(`Invalid path "${p}"`, 'paths inside a container must be absolute');
  return p;
}

export async function pushFile(ctx: Context, name: string, src: string, inner: string, opts: PushOptions = {}): Promise<void> {
  loadConfig(ctx.paths, name);
  checkInner(inner);
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch {
    throw new TslxcError(`Cannot push ${src}`, 'no such file on the host');
  }
  if (!st.isFile()) throw new TslxcError(`Cannot push ${src}`, 'only regular files can be pushed');
  const mode = opts.mode ?? st.mode & 0o7777;
  const live = liveness(ctx.paths, name);
  if (live.initAlive) {
    const args = ['file', '--pid', String(live.files.init!.pid), '--write', inner, '--mode', mode.toString(8), '--uid', String(opts.uid ?? 0), '--gid', String(opts.gid ?? 0)];
    if (opts.createDirs) args.push('--mkdir');
    await helperFile(args, fs.createReadStream(src), undefined);
    return;
  }
  // A stopped container whose files are shifted on disk gets them with its range's ids.
  const onDisk = onDiskMap(loadConfig(ctx.paths, name).config);
  if (onDisk) opts = { ...opts, uid: toHost(onDisk.uid, opts.uid ?? 0) ?? opts.uid, gid: toHost(onDisk.gid, opts.gid ?? 0) ?? opts.gid };
  const acc = hostAccess(ctx, name);
  if (acc.helperArgs) {
    // An overlay root: the helper mounts the merged view in a mount namespace of its own.
    const args = ['file', ...acc.helperArgs, '--write', inner, '--mode', mode.toString(8), '--uid', String(opts.uid ?? 0), '--gid', String(opts.gid ?? 0)];
    if (opts.createDirs) args.push('--mkdir');
    await helperFile(args, fs.createReadStream(src), undefined);
    return;
  }
  const root = acc.root;
  const dir = opts.createDirs ? mkdirInRoot(root, path.posix.dirname(inner)) : resolveInRoot(root, path.posix.dirname(inner));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new TslxcError(`Cannot push to ${inner}`, `${path.posix.dirname(inner)} is not a directory in "${name}"`, 'use -p to create it');
  const target = path.join(dir, path.posix.basename(inner));
  const tmp = `${target}.tslxc-push`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, fs.readFileSync(src));
    fs.fchownSync(fd, opts.uid ?? 0, opts.gid ?? 0);
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
}

export async function pullFile(ctx: Context, name: string, inner: string, dst: string): Promise<void> {
  loadConfig(ctx.paths, name);
  checkInner(inner);
  let out = dst;
  if (fs.existsSync(dst) && fs.statSync(dst).isDirectory()) out = path.join(dst, path.posix.basename(inner));
  const live = liveness(ctx.paths, name);
  const tmp = `${out}.tslxc-pull-${process.pid}`;
  try {
    if (live.initAlive) {
      await helperFile(['file', '--pid', String(live.files.init!.pid), '--read', inner], undefined, fs.createWriteStream(tmp, { mode: 0o644 }));
    } else if (hostAccess(ctx, name).helperArgs) {
      await helperFile(['file', ...hostAccess(ctx, name).helperArgs!, '--read', inner], undefined, fs.createWriteStream(tmp, { mode: 0o644 }));
    } else {
      const host = resolveInRoot(hostAccess(ctx, name).root, inner);
      const st = fs.statSync(host, { throwIfNoEntry: false });
      if (!st?.isFile()) throw new TslxcError(`Cannot pull ${inner}`, st ? 'it is not a regular file' : `no such file in "${name}"`);
      fs.copyFileSync(host, tmp);
    }
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function helperFile(args: string[], input?: NodeJS.ReadableStream, output?: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), args, { stdio: [input ? 'pipe' : 'ignore', output ? 'pipe' : 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    if (input) input.pipe(child.stdin!);
    let flushed: Promise<void> = Promise.resolve();
    if (output) {
      child.stdout!.pipe(output);
      flushed = new Promise((r) => output.on('finish', () => r()));
    }
    child.on('error', reject);
    child.on('close', async (code) => {
      await flushed;
      if (code === 0) resolve();
      else reject(new TslxcError(`File transfer failed`, helperError(stderr)));
    });
  });
}
