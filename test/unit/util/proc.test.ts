import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { claimPidFile, commandLine, pidFileHolder } from '../../../lib/util/proc.js';

// A process read just after spawn may be in its next execve (nice → sh here, as a dir pool's
// spare copy runs), when /proc/PID/cmdline reads empty: ~2 % of such reads did on this machine.
test('a command line read while the process execs its next program is not lost', async (t) => {
  const marker = `/nonexistent/tslxc-proc-test-${process.pid}`;
  const children = [];
  for (let i = 0; i < 200; i++) {
    const child = spawn('nice', ['-n', '19', 'sh', '-c', 'sleep 5', 'tslxc-test', marker], { stdio: 'ignore' });
    children.push(child);
    const cmdline = commandLine(child.pid!);
    child.kill('SIGKILL');
    if (!cmdline?.includes(marker)) {
      t.fail(`read ${JSON.stringify(cmdline)} for run ${i}`);
      break;
    }
  }
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  t.is(commandLine(children[0].pid!), undefined, 'a process that is gone has none');
});

test('a pid file is held while its process runs with the marks; a dead one is taken over', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-pidfile-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pid');
  const marker = `/nonexistent/tslxc-pidfile-test-${process.pid}`;
  const child = spawn('sh', ['-c', 'sleep 30', 'tslxc-test', marker], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const fd = claimPidFile(file, () => pidFileHolder(file, [marker]) !== undefined);
  t.not(fd, undefined);
  fs.writeSync(fd!, `${child.pid}\n`);
  fs.closeSync(fd!);
  t.is(pidFileHolder(file, [marker]), child.pid);
  t.is(pidFileHolder(file, [marker, '/not-in-its-command-line']), undefined, 'every mark must match');
  t.is(
    claimPidFile(file, () => pidFileHolder(file, [marker]) !== undefined),
    undefined,
    'held: not claimed',
  );
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.is(pidFileHolder(file, [marker]), undefined);
  const again = claimPidFile(file, () => pidFileHolder(file, [marker]) !== undefined);
  t.not(again, undefined, "a dead holder's file is taken over");
  fs.closeSync(again!);
  t.is(fs.readFileSync(file, 'utf8'), '', 'a new, empty file');
});
