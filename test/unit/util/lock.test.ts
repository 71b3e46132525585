import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { acquireLock, sweepLocks, tryLock, withLock } from '../../../lib/util/lock.js';

const holderScript = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/lock-holder.js');

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lock-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Another process holding DIR/KEY (lock-holder.js hold): resolves once it holds it. */
async function holder(t: { teardown(fn: () => void): void }, dir: string, key: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [holderScript, 'hold', dir, key], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited (${code}) before holding the lock`)));
  });
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

test('a lock serialises holders', async (t) => {
  const dir = tmpDir(t);
  const order: string[] = [];
  const a = withLock(dir, 'k', async () => {
    order.push('a1');
    await new Promise((r) => setTimeout(r, 50));
    order.push('a2');
  });
  await new Promise((r) => setTimeout(r, 5));
  const b = withLock(dir, 'k', async () => order.push('b'));
  await Promise.all([a, b]);
  t.deepEqual(order, ['a1', 'a2', 'b']);
});

test('two acquisitions in one process exclude each other, and waiting does not block the event loop', async (t) => {
  const dir = tmpDir(t);
  const first = await acquireLock(dir, 'k');
  const second = acquireLock(dir, 'k');
  let got = false;
  void second.then(() => (got = true));
  // A wait that blocked the event loop would never get here: the holder is this very process.
  await new Promise((r) => setTimeout(r, 300));
  t.false(got, 'the second acquisition waits');
  t.is(tryLock(dir, 'k'), undefined);
  first.release();
  (await second).release();
});

test('a release leaves no file behind', async (t) => {
  const dir = tmpDir(t);
  await withLock(dir, 'k', () => t.true(fs.existsSync(path.join(dir, 'k.lock'))));
  t.deepEqual(fs.readdirSync(dir), []);
});

test('a holder killed with SIGKILL leaves a file that is no lock', async (t) => {
  const dir = tmpDir(t);
  const child = await holder(t, dir, 'k');
  child.kill('SIGKILL');
  await exited(child);
  t.true(fs.existsSync(path.join(dir, 'k.lock')), 'its file stays');
  const lock = await acquireLock(dir, 'k', { timeoutMs: 2000 });
  lock.release();
  t.false(fs.existsSync(path.join(dir, 'k.lock')));
});

test('a live holder makes a waiter time out with a clear message naming it', async (t) => {
  const dir = tmpDir(t);
  const child = await holder(t, dir, 'k');
  await t.throwsAsync(acquireLock(dir, 'k', { timeoutMs: 100, purpose: 'container "x"' }), {
    message: new RegExp(`Timed out waiting for container "x".*another tslxc command \\(PID ${child.pid}\\) holds its lock`),
  });
  child.stdin!.end();
  await exited(child);
  (await acquireLock(dir, 'k', { timeoutMs: 2000 })).release();
});

test('sweepLocks removes the leftovers of gone keys, and no lock that is held', async (t) => {
  const dir = tmpDir(t);
  for (const key of ['gone-killed', 'gone-held', 'kept-killed']) {
    const child = await holder(t, dir, key);
    if (key !== 'gone-held') {
      child.kill('SIGKILL');
      await exited(child);
    }
  }
  t.deepEqual(fs.readdirSync(dir).sort(), ['gone-held.lock', 'gone-killed.lock', 'kept-killed.lock']);
  t.deepEqual(
    sweepLocks(dir, (key) => key.startsWith('gone-')),
    ['gone-killed'],
  );
  t.deepEqual(fs.readdirSync(dir).sort(), ['gone-held.lock', 'kept-killed.lock']);
  await t.throwsAsync(acquireLock(dir, 'gone-held', { timeoutMs: 50 }), { message: /Timed out/ }, 'the held one is still held');
});

test('a lock directory left by an older tslxc does not wedge its key', async (t) => {
  const dir = tmpDir(t);
  fs.mkdirSync(path.join(dir, 'k.lock'));
  fs.writeFileSync(path.join(dir, 'k.lock', 'owner'), '1 1\n');
  (await acquireLock(dir, 'k', { timeoutMs: 2000 })).release();
  t.deepEqual(fs.readdirSync(dir), []);
});

/**
 * Rounds of 20 processes that take one lock at the same moment (each waits for a go first), each
 * exiting (SIGKILL, at once) right after its release and every tenth killed while it holds the
 * lock. Each holder logs enter/leave with its PID: no two holders may ever be inside at once, and
 * the lock must still be free at the end. The mkdir lock this replaced failed this (a waiter read
 * a fresh holder's owner file while it was still empty, found no live owner and took the lock).
 */
test('20 contending processes never hold the lock at once, and SIGKILLed holders wedge nothing', async (t) => {
  t.timeout(600_000);
  const dir = tmpDir(t);
  const log = path.join(dir, 'log');
  fs.writeFileSync(log, '');
  const rounds = 8;
  const parallel = 20;
  const failures: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const holders = Array.from({ length: parallel }, (_, j) => {
      const die = j % 10 === 9;
      const child = spawn(process.execPath, [holderScript, 'contend', dir, 'k', log, '20', ...(die ? ['die'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
      t.teardown(() => child.kill('SIGKILL'));
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      const ready = new Promise((resolve) => child.stdout!.once('data', resolve));
      const done = new Promise<void>((resolve) =>
        child.on('exit', (code, signal) => {
          if (signal !== 'SIGKILL') failures.push(`holder ${r}.${j}: ${code} ${err.trim()}`);
          resolve();
        }),
      );
      return { child, ready, done };
    });
    await Promise.all(holders.map((h) => h.ready));
    for (const h of holders) h.child.stdin!.end('go\n');
    await Promise.all(holders.map((h) => h.done));
  }
  t.deepEqual(failures, []);

  const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
  let inside: string | undefined;
  let overlaps = 0;
  let entered = 0;
  for (const line of lines) {
    const [what, pid, die] = line.split(' ');
    if (what === 'enter') {
      entered++;
      if (inside !== undefined) overlaps++;
      // One killed while holding never leaves: the kernel released its lock when it died.
      inside = die ? undefined : pid;
    } else if (what === 'leave') {
      if (inside !== pid) overlaps++;
      inside = undefined;
    }
  }
  t.is(entered, rounds * parallel, 'every holder got the lock');
  t.is(overlaps, 0, `${overlaps} overlapping holds in ${rounds * parallel}`);
  (await acquireLock(dir, 'k', { timeoutMs: 2000 })).release();
});
