import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import ssh2 from 'ssh2';
import type { Paths } from '../../../lib/state/paths.js';
import { ensureKeypair, malformedEd25519, privateKeyFile, publicKeyFile, sshDir } from '../../../lib/ssh/keys.js';
import {
  checkHostKey,
  forgetHostKey,
  formatKnownHosts,
  knownHostsFile,
  parseKnownHosts,
  rememberHostKey,
  updateAddress,
  changedKeyError,
} from '../../../lib/ssh/known-hosts.js';
import { parseLocalForward } from '../../../lib/ssh/forward.js';
import { parseAuthorizedKeys, parsePublicKeys } from '../../../lib/ssh/pubkey.js';
import { exitCodeOf, remoteCommand } from '../../../lib/instance/ssh.js';
import { parsePasswd } from '../../../lib/ssh/authorized.js';
import { ed25519KeyPair } from '../../../lib/ssh/keygen.js';

const { utils } = ssh2;

function tmpPaths(t: { teardown(fn: () => void): void }): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-ssh-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'tslxc-unit' };
}

/** The wire blob of a freshly made public key (what a server shows as its host key). */
function hostKeyBlob(): Buffer {
  const k = utils.parseKey(ed25519KeyPair('x').public);
  if (k instanceof Error || Array.isArray(k)) throw new Error('parse');
  return k.getPublicSSH();
}

// keys.ts

test('the keypair is made once, private 0600 in a 0700 dir, public in OpenSSH format', async (t) => {
  const p = tmpPaths(t);
  const a = await ensureKeypair(p);
  const b = await ensureKeypair(p);
  t.is(a.publicKey, b.publicKey);
  t.is(fs.statSync(sshDir(p)).mode & 0o777, 0o700);
  t.is(fs.statSync(privateKeyFile(p)).mode & 0o777, 0o600);
  t.regex(fs.readFileSync(publicKeyFile(p), 'utf8'), /^ssh-ed25519 [A-Za-z0-9+/]+=* tslxc@\S+\n$/);
  t.regex(a.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  const parsed = utils.parseKey(a.privateKey);
  t.false(parsed instanceof Error);
  t.is((parsed as { type: string }).type, 'ssh-ed25519');
});

test('two first uses at once make one keypair', async (t) => {
  const p = tmpPaths(t);
  const [a, b, c] = await Promise.all([ensureKeypair(p), ensureKeypair(p), ensureKeypair(p)]);
  t.is(a.publicKey, b.publicKey);
  t.is(b.publicKey, c.publicKey);
});

test("a malformed key made by an older tslxc (a 31-byte Ed25519 key from ssh2's generator) is set aside and replaced", async (t) => {
  const p = tmpPaths(t);
  // One such key, as ssh2 made it (seen here): AAAAH = a 31-byte key.
  const bad = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAH/03tT1QlQ5SrrDvsyT4wLYtNc295B7jh8FLr9TMT+w= tslxc@old';
  t.true(malformedEd25519(bad));
  t.false(malformedEd25519(ed25519KeyPair('fine').public));
  fs.mkdirSync(sshDir(p), { recursive: true, mode: 0o700 });
  fs.writeFileSync(privateKeyFile(p), 'old private\n', { mode: 0o600 });
  fs.writeFileSync(publicKeyFile(p), `${bad}\n`);
  const k = await ensureKeypair(p);
  t.false(malformedEd25519(k.publicKey));
  t.not(k.publicKey, bad);
  t.is(fs.readFileSync(`${privateKeyFile(p)}.malformed.pub`, 'utf8'), `${bad}\n`);
  t.is(fs.readFileSync(`${privateKeyFile(p)}.malformed`, 'utf8'), 'old private\n');
  t.is((await ensureKeypair(p)).publicKey, k.publicKey, 'and kept from then on');
});

// known-hosts.ts

test('a host key is learnt, then accepted; another key for the same container is refused', async (t) => {
  const p = tmpPaths(t);
  const id = { name: 'c1', created: '2026-01-01T00:00:00.000Z', address: '10.0.0.2' };
  const key = hostKeyBlob();
  t.is(checkHostKey(p, id, key).status, 'new');
  await rememberHostKey(p, id, key);
  t.is(checkHostKey(p, id, key).status, 'known');
  const other = hostKeyBlob();
  const verdict = checkHostKey(p, id, other);
  t.is(verdict.status, 'changed');
  if (verdict.status !== 'changed') return;
  const err = changedKeyError(id, other, verdict.stored);
  t.notRegex(err.message, /\n/);
  t.regex(err.message, /Host key of "c1" \(10\.0\.0\.2\) has changed.*SHA256:.*tslxc ssh c1 --forget-host-key/);
});

test('the address may change, the key may not; a new container of the same name starts afresh', async (t) => {
  const p = tmpPaths(t);
  const id = { name: 'c1', created: 'T1', address: '10.0.0.2' };
  const key = hostKeyBlob();
  await rememberHostKey(p, id, key);
  const moved = { ...id, address: '10.0.0.9' };
  t.is(checkHostKey(p, moved, key).status, 'known');
  await updateAddress(p, moved);
  t.is(parseKnownHosts(fs.readFileSync(knownHostsFile(p), 'utf8'))[0].address, '10.0.0.9');
  // Deleted and made again under the same name: another machine, not an attack.
  const again = { ...id, created: 'T2' };
  const newKey = hostKeyBlob();
  t.is(checkHostKey(p, again, newKey).status, 'new');
  await rememberHostKey(p, again, newKey);
  const entries = parseKnownHosts(fs.readFileSync(knownHostsFile(p), 'utf8'));
  t.is(entries.length, 1);
  t.is(entries[0].created, 'T2');
});

test("forgetting a host key removes only that container's entries", async (t) => {
  const p = tmpPaths(t);
  await rememberHostKey(p, { name: 'a', created: 'T', address: '10.0.0.2' }, hostKeyBlob());
  await rememberHostKey(p, { name: 'b', created: 'T', address: '10.0.0.3' }, hostKeyBlob());
  t.is(await forgetHostKey(p, 'a'), 1);
  t.is(await forgetHostKey(p, 'a'), 0);
  t.deepEqual(
    parseKnownHosts(fs.readFileSync(knownHostsFile(p), 'utf8')).map((e) => e.name),
    ['b'],
  );
});

test('known_hosts lines are in OpenSSH format and round-trip', (t) => {
  const e = { name: 'web-1', created: '2026-01-01T00:00:00.000Z', address: '10.1.2.3', type: 'ssh-ed25519', base64: 'AAAAC3NzaC1lZDI1NTE5AAAAIA==' };
  const text = formatKnownHosts([e]);
  t.is(text, '10.1.2.3 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== name=web-1 created=2026-01-01T00:00:00.000Z\n');
  t.deepEqual(parseKnownHosts(`# comment\n\n${text}garbage line\n`), [e]);
});

// forward.ts

test('-L specs are read as OpenSSH reads them', (t) => {
  t.like(parseLocalForward('8080:127.0.0.1:80'), { bindAddress: '127.0.0.1', bindPort: 8080, host: '127.0.0.1', hostPort: 80 });
  t.like(parseLocalForward('0.0.0.0:8080:web:80'), { bindAddress: '0.0.0.0', bindPort: 8080, host: 'web', hostPort: 80 });
  t.like(parseLocalForward('*:8080:localhost:80'), { bindAddress: '', bindPort: 8080, host: 'localhost' });
  t.like(parseLocalForward(':8080:localhost:80'), { bindAddress: '' });
  t.like(parseLocalForward('[::1]:8080:[fd00::2]:443'), { bindAddress: '::1', bindPort: 8080, host: 'fd00::2', hostPort: 443 });
  t.like(parseLocalForward('8080:[::1]:22'), { bindAddress: '127.0.0.1', host: '::1', hostPort: 22 });
});

test('bad -L specs are refused with one line', (t) => {
  for (const bad of [
    '',
    '8080',
    '8080:host',
    '0:host:80',
    '8080:host:65536',
    'x:host:80',
    '8080::80',
    '1:2:3:4:5',
    '[::1:8080:h:80',
    '8080:/tmp/sock',
    '8080:host:80x',
  ]) {
    const err = t.throws(() => parseLocalForward(bad), undefined, bad);
    t.regex(err!.message, /^Invalid forward/, bad);
    t.notRegex(err!.message, /\n/);
  }
});

// pubkey.ts

test('public key files: keys are read, private keys and garbage refused', (t) => {
  const pair = ed25519KeyPair('me@laptop');
  const keys = parsePublicKeys(`# mine\n${pair.public}\n\n`, 'me.pub', utils.parseKey);
  t.is(keys.length, 1);
  t.is(keys[0].type, 'ssh-ed25519');
  t.is(keys[0].comment, 'me@laptop');
  t.regex(keys[0].fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.throws(() => parsePublicKeys(pair.private, 'me', utils.parseKey), { message: /Refusing me: it holds a private key/ });
  t.throws(() => parsePublicKeys('ssh-ed25519 AAAAnotakey me', 'x.pub', utils.parseKey), { message: /Invalid public key in x.pub, line 1/ });
  t.throws(() => parsePublicKeys('\n# only\n', 'x.pub', utils.parseKey), { message: /No public key in x.pub/ });
  t.throws(() => parsePublicKeys(`from="10.0.0.1" ${pair.public}`, 'x.pub', utils.parseKey), { message: /Invalid public key/ });
});

test('authorized_keys lines are kept as they are, keys recognised', (t) => {
  const pair = ed25519KeyPair('a b c');
  const lines = parseAuthorizedKeys(`# hello\ncommand="x" ${pair.public}\n${pair.public}\n`);
  t.is(lines.length, 3);
  t.is(lines[0].key, undefined);
  t.is(lines[1].key, undefined);
  t.is(lines[2].key?.comment, 'a b c');
  t.is(lines[2].line, pair.public);
});

// client.ts and authorized.ts helpers

test('remote commands: one word is a command line, several are quoted', (t) => {
  t.is(remoteCommand(['ls -l | wc -l']), 'ls -l | wc -l');
  t.is(remoteCommand(['sh', '-c', 'exit 3']), "sh -c 'exit 3'");
  t.is(remoteCommand(['echo', "it's"]), "echo 'it'\\''s'");
  t.is(remoteCommand(['printf', '']), "printf ''");
});

test('exit codes: the status, 128+n for a signal, 255 for nothing', (t) => {
  t.is(exitCodeOf(0, undefined), 0);
  t.is(exitCodeOf(3, undefined), 3);
  t.is(exitCodeOf(null, 'TERM'), 143);
  t.is(exitCodeOf(null, 'SIGKILL'), 137);
  t.is(exitCodeOf(undefined, undefined), 255);
});

test('passwd entries', (t) => {
  t.deepEqual(parsePasswd('root:x:0:0:root:/root:/bin/bash\nbad line\ndev:x:1000:1000::/home/dev:/bin/bash\n'), [
    { user: 'root', uid: 0, gid: 0, home: '/root' },
    { user: 'dev', uid: 1000, gid: 1000, home: '/home/dev' },
  ]);
});

// keygen.ts

test("Ed25519 pairs always parse, with ssh2 and as OpenSSH writes them (ssh2's own generator drops a leading zero byte about once in 200)", (t) => {
  for (let i = 0; i < 1000; i++) {
    const pair = ed25519KeyPair(`k${i}@test`);
    const pub = utils.parseKey(pair.public);
    const priv = utils.parseKey(pair.private);
    if (pub instanceof Error || Array.isArray(pub) || priv instanceof Error || Array.isArray(priv))
      return t.fail(`pair ${i} does not parse: ${String(pub)} ${String(priv)}`);
    if (!pub.getPublicSSH().equals(priv.getPublicSSH())) return t.fail(`pair ${i}: the halves differ`);
    const signature = priv.sign(Buffer.from('data'));
    if (!pub.verify(Buffer.from('data'), signature as Buffer)) return t.fail(`pair ${i}: a signature does not verify`);
    if (i < 5) {
      // OpenSSH reads the private key and derives the same public key from it.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-keygen-'));
      try {
        fs.writeFileSync(path.join(dir, 'k'), pair.private, { mode: 0o600 });
        const r = spawnSync('ssh-keygen', ['-y', '-f', path.join(dir, 'k')], { encoding: 'utf8' });
        if (r.error) continue; // no OpenSSH client here
        t.is(r.stdout.trim().split(' ').slice(0, 2).join(' '), pair.public.split(' ').slice(0, 2).join(' '));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  t.pass();
});
