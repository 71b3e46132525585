import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';

/**
 * Resolve a path inside a container's root the way the kernel would if that root were "/"
 * (openat2's RESOLVE_IN_ROOT): ".." stops at the root and every symlink, absolute or relative, is
 * resolved against the root. So an image holding `/etc/hostname -> /etc/shadow` of the host, or
 * `/dev -> ../../..`, can never make tslxc touch a file outside the root.
 *
 * This walk is for trees no process is running in (images being built, stopped containers). For a
 * running container, where a component could be swapped between the check and the use, the native
 * helper resolves with openat2 itself.
 */
export function resolveInRoot(root: string, inner: string, opts: { followLast?: boolean } = {}): string {
  const followLast = opts.followLast ?? true;
  const parts = inner.split('/').filter((p) => p && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = path.join(root, ...resolved, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++links > 40) throw new TslxcError(`Cannot resolve ${inner}`, 'too many levels of symbolic links');
      const target = fs.readlinkSync(host);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** Create the parents of an inner path as real directories inside the root. */
export function mkdirInRoot(root: string, innerDir: string, mode = 0o755): string {
  const parts = innerDir.split('/').filter((p) => p && p !== '.');
  let current = '/';
  for (const part of parts) {
    current = path.posix.join(current, part);
    const host = resolveInRoot(root, current);
    try {
      // The resolved path's existing components are real directories (symlinks were resolved
      // inside the root), so creating the missing ones recursively cannot leave the root.
      fs.mkdirSync(host, { mode, recursive: true });
      if (!fs.statSync(host).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'EEXIST' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!fs.statSync(host).isDirectory()) throw new TslxcError(`Cannot create ${innerDir}`, `${current} is not a directory`);
    }
  }
  return resolveInRoot(root, innerDir);
}

/** Write a file inside the root, replacing a symlink at the last component instead of following it. */
export function writeFileInRoot(root: string, inner: string, content: string | Buffer, mode = 0o644): void {
  const dir = mkdirInRoot(root, path.posix.dirname(inner));
  const host = path.join(dir, path.posix.basename(inner));
  const tmp = `${host}.tslxc-tmp`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, content);
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, host);
}

export function readFileInRoot(root: string, inner: string): Buffer {
  return fs.readFileSync(resolveInRoot(root, inner));
}
