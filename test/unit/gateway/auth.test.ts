import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import ssh2 from 'ssh2';
import { authorize, findKey, parsePublicKeyLine, verifySignature } from '../../../lib/gateway/auth.js';
import { loadOrCreateHostKey, hostKeyFile } from '../../../lib/gateway/hostkey.js';
import { loginTarget, parseLoginName, putGatewayUser } from '../../../lib/gateway/users.js';
import type { Paths } from '../../../lib/state/paths.js';
import { ed25519KeyPair } from '../../../lib/ssh/keygen.js';

function tmpPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-gw-'));
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'tslxc-unit' };
}

function pair() {
  const k = ed25519KeyPair('test');
  const pub = ssh2.utils.parseKey(k.public) as ssh2.ParsedKey;
  return { line: k.public, priv: ssh2.utils.parseKey(k.private) as ssh2.ParsedKey, blob: pub.getPublicSSH() };
}

test('login names: user, user+container; nothing else', (t) => {
  t.deepEqual(parseLoginName('member1'), { user: 'member1' });
  t.deepEqual(parseLoginName('member1+web1'), { user: 'member1', container: 'web1' });
  for (const bad of ['', '+web1', 'member1+', 'member1+web1+x', 'Member1', 'm/1', 'member1+../x', 'member1+-x', 'a'.repeat(33)]) {
    t.is(parseLoginName(bad), undefined, bad);
  }
  const u = { name: 'member1', keys: [], containers: ['web1', 'db1'] };
  t.is(loginTarget(u, { user: 'member1' }), 'web1');
  t.is(loginTarget(u, { user: 'member1', container: 'db1' }), 'db1');
  t.is(loginTarget(u, { user: 'member1', container: 'other' }), undefined);
  t.is(loginTarget({ ...u, containers: [] }, { user: 'member1' }), undefined);
});

test('keys: found by blob among several; private keys and junk are not public keys', (t) => {
  const a = pair();
  const b = pair();
  t.truthy(findKey(['junk', a.line, b.line], b.blob));
  t.is(findKey([a.line], b.blob), undefined);
  t.is(findKey([], b.blob), undefined);
  t.is(parsePublicKeyLine('ssh-ed25519 AAAAnotbase64'), undefined);
  const priv = ed25519KeyPair('test').private;
  t.is(parsePublicKeyLine(priv), undefined);
});

test("authorize: the key must be the user's and the container one of theirs; signatures are checked", async (t) => {
  const p = tmpPaths();
  const a = pair();
  const b = pair();
  await putGatewayUser(p, { name: 'alice', keys: [a.line], containers: ['c1', 'c2'] });
  await putGatewayUser(p, { name: 'bob', keys: [b.line], containers: ['c3'] });
  const ok = authorize(p, 'alice+c2', a.blob);
  t.true(ok.ok);
  if (ok.ok) t.is(ok.container, 'c2');
  t.deepEqual(authorize(p, 'alice', b.blob), { ok: false, reason: 'key not listed for this user' });
  t.false(authorize(p, 'alice+c3', a.blob).ok);
  t.false(authorize(p, 'carol', a.blob).ok);
  t.false(authorize(p, 'alice+C1', a.blob).ok);
  const data = Buffer.from('session id and request');
  const sig = a.priv.sign(data) as Buffer;
  if (ok.ok) {
    t.true(verifySignature(ok.key, data, sig));
    t.false(verifySignature(ok.key, Buffer.from('another session'), sig));
    t.false(verifySignature(ok.key, data, b.priv.sign(data) as Buffer));
  }
  fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
});

test('the host key is made once, private, and kept', (t) => {
  const p = tmpPaths();
  const first = loadOrCreateHostKey(p);
  t.regex(first.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.is(fs.statSync(hostKeyFile(p)).mode & 0o777, 0o600);
  t.is(loadOrCreateHostKey(p).fingerprint, first.fingerprint);
  const keygen = spawnSync('ssh-keygen', ['-lf', hostKeyFile(p)], { encoding: 'utf8' });
  if (keygen.status === 0) t.true(keygen.stdout.includes(first.fingerprint), "the fingerprint is OpenSSH's");
  fs.chmodSync(hostKeyFile(p), 0o644);
  t.throws(() => loadOrCreateHostKey(p), { message: /is not private/ });
  fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
});
