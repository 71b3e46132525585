/**
 * A process that takes a lock with util/lock.ts, for tests of what other processes see:
 *
 *   node lock-holder.js hold DIR KEY
 *       takes the lock, writes "held\n" on stdout, holds it until killed or stdin closes.
 *   node lock-holder.js contend DIR KEY LOG HOLD_MS [die]
 *       writes "ready\n" and waits for a line on stdin (so a round of them contends at once), then
 *       takes the lock, appends "enter PID" to LOG (O_APPEND: one write, never interleaved),
 *       holds it HOLD_MS, appends "leave PID", releases it and kills itself at once (SIGKILL); with
 *       "die" it kills itself while holding, after "enter PID die".
 */
import fs from 'node:fs';
import { acquireLock } from '../../lib/util/lock.js';

const [mode, dir, key, log, holdMs, die] = process.argv.slice(2);
if (mode === 'contend') {
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.destroy();
}
const lock = await acquireLock(dir, key, { timeoutMs: 120_000 });
if (mode === 'hold') {
  process.stdout.write('held\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    lock.release();
    process.exit(0);
  });
} else {
  fs.appendFileSync(log, `enter ${process.pid}${die ? ' die' : ''}\n`);
  if (die) process.kill(process.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, Number(holdMs)));
  fs.appendFileSync(log, `leave ${process.pid}\n`);
  lock.release();
  // Gone the instant after its release, before node's own exit work: SIGKILL, as a CLI is killed.
  process.kill(process.pid, 'SIGKILL');
}
