import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { errorText, TslxcError } from '../errors.js';
import { mkdirInRoot, resolveInRoot } from '../util/rootfs.js';
import { loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { hostAccess } from '../storage/instance.js';
import { helperError, runHelper, type HelperIo } from '../state/helper.js';
import { liveness } from '../state/runtime.js';
import { onDiskMap } from './idmap.js';
import type { IdMap } from '../config/idmap.js';
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

/** What a push reads: a host file, or the CLI's stdin ("-"). */
export type PushSource = string | { stdin: NodeJS.ReadableStream };

export async function pushFile(ctx: Context, name: string, src: PushSource, inner: string, opts: PushOptions = {}): Promise<void> {
  loadConfig(ctx.paths, name);
  checkInner(inner);
  let mode = opts.mode ?? 0o644;
  let input: () => NodeJS.ReadableStream;
  // The helper writes the file only when exactly this many bytes arrived: a push killed midway
  // closes the pipe as a finished one does (stdin has no size known in advance: it goes without).
  let size: number | undefined;
  if (typeof src === 'string') {
    let st: fs.Stats;
    try {
      st = fs.statSync(src);
    } catch {
      throw new TslxcError(`Cannot push ${src}`, 'no such file on the host');
    }
    if (!st.isFile()) throw new TslxcError(`Cannot push ${src}`, 'only regular files can be pushed');
    mode = opts.mode ?? st.mode & 0o7777;
    size = st.size;
    input = () => fs.createReadStream(src);
  } else input = () => src.stdin;
  const what = `Cannot push to ${inner}`;
  const live = liveness(ctx.paths, name);
  if (live.initAlive) {
    const args = [
      'file',
      '--pid',
      String(live.files.init!.pid),
      '--write',
      inner,
      '--mode',
      mode.toString(8),
      '--uid',
      String(opts.uid ?? 0),
      '--gid',
      String(opts.gid ?? 0),
    ];
    if (opts.createDirs) args.push('--mkdir');
    if (size !== undefined) args.push('--size', String(size));
    await helperFile(args, { input: input() }, what, name, inner);
    return;
  }
  // A stopped container whose files are shifted on disk gets them with its range's ids.
  await ctx.finishPending(name);
  const onDisk = onDiskMap(loadConfig(ctx.paths, name).config);
  if (onDisk) opts = { ...opts, uid: toHost(onDisk.uid, opts.uid ?? 0) ?? opts.uid, gid: toHost(onDisk.gid, opts.gid ?? 0) ?? opts.gid };
  const acc = hostAccess(ctx, name);
  if (acc.helperArgs) {
    // An overlay root: the helper mounts the merged view in a mount namespace of its own.
    const args = ['file', ...acc.helperArgs, '--write', inner, '--mode', mode.toString(8), '--uid', String(opts.uid ?? 0), '--gid', String(opts.gid ?? 0)];
    if (opts.createDirs) args.push('--mkdir');
    if (size !== undefined) args.push('--size', String(size));
    await helperFile(args, { input: input() }, what, name, inner);
    return;
  }
  const root = acc.root;
  const dir = opts.createDirs ? mkdirInRoot(root, path.posix.dirname(inner)) : resolveInRoot(root, path.posix.dirname(inner));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw missingDir(what, name, inner, !opts.createDirs);
  const target = path.join(dir, path.posix.basename(inner));
  const tmp = `${target}.tslxc-push`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    try {
      await pipeline(input(), fs.createWriteStream('', { fd, autoClose: false }));
      fs.fchownSync(fd, opts.uid ?? 0, opts.gid ?? 0);
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new TslxcError(what, errorText(err));
  }
}

/** The parent directory of a push target is missing (or is not a directory). */
function missingDir(what: string, name: string, inner: string, suggest: boolean): TslxcError {
  return new TslxcError(what, `${path.posix.dirname(inner)} is not a directory in "${name}"`, suggest ? 'use -p to create it' : undefined);
}

export async function pullFile(ctx: Context, name: string, inner: string, dst: string): Promise<void> {
  loadConfig(ctx.paths, name);
  checkInner(inner);
  let out = dst;
  if (fs.existsSync(dst) && fs.statSync(dst).isDirectory()) out = path.join(dst, path.posix.basename(inner));
  const live = liveness(ctx.paths, name);
  const what = `Cannot pull ${inner}`;
  if (!fs.statSync(path.dirname(path.resolve(out)), { throwIfNoEntry: false })?.isDirectory())
    throw new TslxcError(what, `${path.dirname(out)} is not a directory on the host`);
  const tmp = `${out}.tslxc-pull-${process.pid}`;
  if (!live.initAlive) await ctx.finishPending(name);
  try {
    if (live.initAlive) {
      await helperFile(
        ['file', '--pid', String(live.files.init!.pid), '--read', inner],
        { output: fs.createWriteStream(tmp, { mode: 0o644 }) },
        what,
        name,
        inner,
      );
    } else if (hostAccess(ctx, name).helperArgs) {
      await helperFile(
        ['file', ...hostAccess(ctx, name).helperArgs!, '--read', inner],
        { output: fs.createWriteStream(tmp, { mode: 0o644 }) },
        what,
        name,
        inner,
      );
    } else {
      const host = resolveInRoot(hostAccess(ctx, name).root, inner);
      const st = fs.statSync(host, { throwIfNoEntry: false });
      if (!st?.isFile()) throw new TslxcError(what, st ? 'it is not a regular file' : `no such file in "${name}"`);
      fs.copyFileSync(host, tmp);
    }
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * The helper's file mode. Its failures become the same lines as those of the host-side path
 * above: a missing parent directory or file is named as such, anything else keeps the helper's
 * reason.
 */
async function helperFile(args: string[], io: HelperIo, what: string, name: string, inner: string): Promise<void> {
  let r;
  try {
    r = await runHelper(args, io);
  } catch (err) {
    throw new TslxcError(what, errorText(err));
  }
  if (r.code === 0) return;
  const why = helperError(r.stderr);
  const dir = path.posix.dirname(inner);
  if (args.includes('--write') && why === `open directory ${dir}: No such file or directory`) throw missingDir(what, name, inner, !args.includes('--mkdir'));
  if (args.includes('--write') && why === `open directory ${dir}: Not a directory`) throw missingDir(what, name, inner, false);
  if (args.includes('--read') && /: No such file or directory$/.test(why) && why.startsWith(`open ${inner}:`))
    throw new TslxcError(what, `no such file in "${name}"`);
  if (args.includes('--read') && why === `${inner}: not a regular file`) throw new TslxcError(what, 'it is not a regular file');
  throw new TslxcError(what, why);
}

/** Where the helper's file mode works on a container's tree, and the map its ids are shifted by. */
export interface FileTarget {
  /** `--pid PID` (the running container's mount namespace) or its root's options (stopped). */
  args: string[];
  /** Set when the helper sees host ids (a stopped container whose files are shifted on disk). */
  onDisk?: IdMap;
}

/**
 * The API's file operations (get, put, mkdir, symlink, delete) go through the helper in every case,
 * so a path is resolved by the kernel inside the container (running: its mount namespace; stopped:
 * a chroot into its root in a mount namespace of the helper's own), as push and pull do.
 */
export async function fileTarget(ctx: Context, name: string): Promise<FileTarget> {
  const cfg = loadConfig(ctx.paths, name);
  const live = liveness(ctx.paths, name);
  if (live.initAlive) return { args: ['--pid', String(live.files.init!.pid)] };
  await ctx.finishPending(name);
  const acc = hostAccess(ctx, name);
  return { args: acc.helperArgs ?? ['--rootfs', acc.root], onDisk: onDiskMap(cfg.config) };
}
