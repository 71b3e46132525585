import { spawn } from 'node:child_process';
import test from 'ava';
import { commandLine } from '../../../lib/util/proc.js';

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
