import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { acquireLock, withLock } from '../../../lib/util/lock.js';

test('a lock serialises holders', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lock-'));
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
  fs.rmSync(dir, { recursive: true });
});

test('a lock whose holder died is taken over', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lock-'));
  // A process that exits at once stands in for a CLI killed with SIGKILL while holding the lock.
  const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
  fs.mkdirSync(path.join(dir, 'k.lock'));
  fs.writeFileSync(path.join(dir, 'k.lock', 'owner'), `${dead} 12345\n`);
  const lock = await acquireLock(dir, 'k', { timeoutMs: 2000 });
  t.is(fs.readFileSync(path.join(dir, 'k.lock', 'owner'), 'utf8').split(' ')[0], String(process.pid));
  lock.release();
  t.false(fs.existsSync(path.join(dir, 'k.lock')));
  fs.rmSync(dir, { recursive: true });
});

test('a live holder makes a waiter time out with a clear message', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lock-'));
  const held = await acquireLock(dir, 'k');
  await t.throwsAsync(acquireLock(dir, 'k', { timeoutMs: 100, purpose: 'container "x"' }), { message: /Timed out waiting for container "x"/ });
  held.release();
  fs.rmSync(dir, { recursive: true });
});
