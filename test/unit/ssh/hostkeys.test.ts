import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { hostKeyFiles, makeHostKeys } from '../../../lib/ssh/hostkeys.js';
import { findTool } from '../../../lib/util/exec.js';

/** Host keys tslxc writes are what OpenSSH reads: ssh-keygen derives the same public key from each private one. */
test('host keys: OpenSSH reads each private key and derives its public key', (t) => {
  const keygen = findTool('ssh-keygen');
  const keys = makeHostKeys('box1');
  t.deepEqual(
    keys.map((k) => k.file),
    ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key'],
  );
  if (!keygen) return t.log('ssh-keygen is not installed: the format is not cross-checked');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-hostkeys-'));
  try {
    for (let round = 0; round < 20; round++) {
      // Several rounds: ECDSA's private scalar needs an mpint's leading zero about half the time.
      for (const k of round ? makeHostKeys('box1') : keys) {
        const f = path.join(dir, k.file);
        fs.writeFileSync(f, k.privateKey, { mode: 0o600 });
        const r = spawnSync(keygen, ['-y', '-f', f], { encoding: 'utf8' });
        t.is(r.status, 0, r.stderr);
        t.is(r.stdout.trim(), k.publicKey, k.file);
        t.true(k.publicKey.endsWith(' root@box1'));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('host key files: private 0600, public 0644, under /etc/ssh', (t) => {
  const files = hostKeyFiles('b');
  t.deepEqual(
    files.map((f) => [f.path, f.mode]),
    [
      ['/etc/ssh/ssh_host_ecdsa_key', 0o600],
      ['/etc/ssh/ssh_host_ecdsa_key.pub', 0o644],
      ['/etc/ssh/ssh_host_ed25519_key', 0o600],
      ['/etc/ssh/ssh_host_ed25519_key.pub', 0o644],
    ],
  );
});
