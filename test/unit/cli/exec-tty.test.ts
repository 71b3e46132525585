import test from 'ava';
import { wantsTty } from '../../../lib/cli/options/exec.js';

/** `lxc exec`'s rule: -t forces a pty, -T forbids it, otherwise a pty when stdin and stdout are terminals. */
const onTerminal = (stdin: boolean, stdout: boolean, f: () => void) => {
  const saved = [process.stdin.isTTY, process.stdout.isTTY];
  Object.defineProperty(process.stdin, 'isTTY', { value: stdin, configurable: true, writable: true });
  Object.defineProperty(process.stdout, 'isTTY', { value: stdout, configurable: true, writable: true });
  try {
    f();
  } finally {
    Object.defineProperty(process.stdin, 'isTTY', { value: saved[0], configurable: true, writable: true });
    Object.defineProperty(process.stdout, 'isTTY', { value: saved[1], configurable: true, writable: true });
  }
};

test.serial('a pty by default when stdin and stdout are terminals, whatever the command', (t) => {
  onTerminal(true, true, () => t.true(wantsTty({})));
  onTerminal(true, false, () => t.false(wantsTty({})));
  onTerminal(false, true, () => t.false(wantsTty({})));
});

test.serial('-t forces one, -T forbids one, both together are refused', (t) => {
  onTerminal(false, false, () => t.true(wantsTty({ tty: true })));
  onTerminal(true, true, () => t.false(wantsTty({ 'no-tty': true })));
  t.throws(() => wantsTty({ tty: true, 'no-tty': true }), { message: /Cannot both force and forbid a terminal/ });
});
