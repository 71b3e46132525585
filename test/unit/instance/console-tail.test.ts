import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { consoleTail } from '../../../lib/state/runtime.js';

function logDir(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-tail-'));
  fs.writeFileSync(path.join(dir, 'console.log'), text);
  return dir;
}

test('systemd dying at boot: its last meaningful lines, markers and escapes left out', (t) => {
  const dir = logDir(
    'systemd 252.36-1~deb12u1 running in system mode\r\nDetected virtualization container-other.\r\n\r\n' +
      'Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r\n\r\n' +
      'Failed to create control group inotify object: Too many open files\r\n' +
      'Failed to allocate manager object: Too many open files\r\n' +
      '[\x1b[0;1;31m!!!!!!\x1b[0m] Failed to allocate manager object.\r\n' +
      'Exiting PID 1...\r\n',
  );
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.is(
    consoleTail(dir),
    'Failed to create control group inotify object: Too many open files / Failed to allocate manager object: Too many open files / Failed to allocate manager object.',
  );
});

test('only what this boot wrote (from an offset); nothing when there is no log', (t) => {
  const first = 'boot one: broken\n';
  const dir = logDir(`${first}boot two: also broken\n`);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.is(consoleTail(dir, Buffer.byteLength(first)), 'boot two: also broken');
  t.is(consoleTail(dir, 1 << 20), 'boot one: broken / boot two: also broken', 'a rotated log is read whole');
  t.is(consoleTail(path.join(dir, 'none')), '');
});
