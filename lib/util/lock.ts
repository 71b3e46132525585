import fs from 'node:fs';
import path from 'node:path';
import { isErrno, TslxcError } from '../errors.js';
import { isAlive, parseRef, selfRef } from './proc.js';
import { mkdirp, sleep } from './fs.js';

/**
 * Inter-process locks for concurrent CLI invocations. A lock is a directory (mkdir is atomic) with
 * an `owner` file naming the holder by PID and start time. A holder killed with SIGKILL leaves its
 * lock behind; the next taker sees the owner is dead and takes the lock over, so a crash never
 * wedges a container.
 */
export interface Lock {
  release(): void;
}

export async function acquireLock(dir: string, key: string, opts: { timeoutMs?: number; purpose?: string } = {}): Promise<Lock> {
  mkdirp(dir, 0o700);
  const lockDir = path.join(dir, `${key}.lock`);
  const me = selfRef();
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let delay = 5;
  for (;;) {
    try {
      fs.mkdirSync(lockDir, { mode: 0o700 });
      fs.writeFileSync(path.join(lockDir, 'owner'), `${me.pid} ${me.startTime}\n`);
      return { release: () => releaseLock(lockDir, `${me.pid} ${me.startTime}`) };
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    stealIfStale(lockDir);
    if (Date.now() > deadline) {
      const owner = readOwner(lockDir);
      throw new TslxcError(
        `Timed out waiting for ${opts.purpose ?? key}`,
        `another tslxc command${owner ? ` (PID ${owner.split(' ')[0]})` : ''} holds its lock`,
        'wait for it to finish and try again',
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
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

function readOwner(lockDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(lockDir, 'owner'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function stealIfStale(lockDir: string): void {
  const owner = readOwner(lockDir);
  if (owner === undefined) {
    // Taken but the owner not written yet, or the taker died between mkdir and write: give a live
    // taker a moment before treating it as stale.
    try {
      if (Date.now() - fs.statSync(lockDir).mtimeMs < 2000) return;
    } catch {
      return;
    }
  } else if (isAlive(parseRef(owner))) {
    return;
  }
  // Move the stale lock aside atomically; only one contender wins the rename. If what we moved is
  // not the stale lock we looked at (someone took it over in between), put it back.
  const aside = `${lockDir}.stale.${process.pid}.${Date.now()}`;
  try {
    fs.renameSync(lockDir, aside);
  } catch {
    return;
  }
  if (readOwner(aside) !== owner) {
    try {
      fs.renameSync(aside, lockDir);
      return;
    } catch {
      /* the slot was taken again: the moved lock's owner loses it, as if it had died */
    }
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

function releaseLock(lockDir: string, owner: string): void {
  if (readOwner(lockDir) === owner) fs.rmSync(lockDir, { recursive: true, force: true });
}
