import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isErrno, TslxcError } from '../errors.js';
import { mkdirp, sleep } from './fs.js';

/**
 * Inter-process locks for concurrent CLI invocations: flock(2) on DIR/KEY.lock, so the kernel
 * releases a lock when its holder dies, SIGKILL included. The protocol is native/lock.c's (one
 * source, compiled into tslxc-helper, whose start fast path takes the same locks, and into the
 * addon loaded here): take without waiting, check the file is still the one named, release by
 * removing the file while holding it. A file left by a killed holder is no lock; sweepLocks
 * removes those whose key is gone.
 *
 * Waiting happens here, by polling: node's event loop must not block on a lock (lab up and the
 * API server run many operations in one process). Two acquisitions in one process exclude each
 * other like two processes do.
 */
export interface Lock {
  release(): void;
  /** the open file description holding it: a process given a copy holds the lock with it */
  readonly fd: number;
}

interface LockAddon {
  /** the lock's fd, or -1 when another holds it; throws (with .code) when it cannot be taken */
  take(file: string): number;
  release(file: string, fd: number): void;
  /** the holder's PID (from /proc/locks), 0 when not known */
  holder(file: string): number;
  held(file: string): boolean;
  closeOnExec(fd: number): void;
}

let addon: LockAddon | undefined;

function native(): LockAddon {
  if (!addon) {
    // dist/lib/util/ and the bundles' dist/lib/fast|full/ are both three levels below the package.
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../native/build/tslxc_lock.node');
    const mod = { exports: {} as LockAddon };
    try {
      process.dlopen(mod, file);
    } catch (err) {
      throw new TslxcError("Cannot load tslxc's lock module", `${file}: ${(err as Error).message.split('\n')[0]}`, 'build tslxc again ("npm run build")');
    }
    addon = mod.exports;
  }
  return addon;
}

export const lockFile = (dir: string, key: string) => path.join(dir, `${key}.lock`);

/** The fd of the lock, or -1 while another holds it. */
function take(file: string): number {
  try {
    return native().take(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  mkdirp(path.dirname(file), 0o700);
  return native().take(file);
}

function held(file: string, fd: number): Lock {
  let released = false;
  return {
    fd,
    release: () => {
      if (released) return;
      released = true;
      native().release(file, fd);
    },
  };
}

/** A lock this process was handed (an fd another holder passed on): released as if taken here. */
export function adoptLock(dir: string, key: string, fd: number): Lock {
  closeOnExec(fd);
  return held(lockFile(dir, key), fd);
}

/**
 * Makes an fd this process inherited close-on-exec, as every fd it opens itself is: without it,
 * each child it starts (a helper, tar, a background export) would hold it too: a lock would stay
 * held, a listening socket open, after this process ended.
 */
export function closeOnExec(fd: number): void {
  native().closeOnExec(fd);
}

/** The lock if it is free now, without waiting. */
export function tryLock(dir: string, key: string): Lock | undefined {
  const file = lockFile(dir, key);
  const fd = take(file);
  return fd >= 0 ? held(file, fd) : undefined;
}

export async function acquireLock(dir: string, key: string, opts: { timeoutMs?: number; purpose?: string } = {}): Promise<Lock> {
  const file = lockFile(dir, key);
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let delay = 1;
  for (;;) {
    const fd = take(file);
    if (fd >= 0) return held(file, fd);
    if (Date.now() > deadline) {
      const pid = native().holder(file);
      throw new TslxcError(
        `Timed out waiting for ${opts.purpose ?? key}`,
        `another tslxc command${pid ? ` (PID ${pid})` : ''} holds its lock`,
        'wait for it to finish and try again',
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

export async function withLock<T>(dir: string, key: string, fn: () => Promise<T> | T, opts: { timeoutMs?: number; purpose?: string } = {}): Promise<T> {
  const lock = await acquireLock(dir, key, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Whether a process holds the lock right now. */
export function lockHeld(dir: string, key: string): boolean {
  const file = lockFile(dir, key);
  // Normal operation leaves no file behind: no file, no lock, and no need to load the addon.
  return fs.existsSync(file) && native().held(file);
}

/**
 * Removes the files killed holders left for keys that are gone (`gone(key)`: a container that no
 * longer exists), each taken first without waiting so a held one stays. Returns the keys removed.
 */
export function sweepLocks(dir: string, gone: (key: string) => boolean): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const n of names) {
    const key = n.endsWith('.lock') ? n.slice(0, -'.lock'.length) : undefined;
    if (!key || !gone(key)) continue;
    const lock = tryLock(dir, key);
    if (!lock) continue;
    lock.release();
    swept.push(key);
  }
  return swept;
}
