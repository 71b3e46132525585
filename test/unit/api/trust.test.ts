import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { createToken, loadTrust, redeemToken, removeTrusted, tokenSecret } from '../../../lib/api/trust.js';
import type { Paths } from '../../../lib/state/paths.js';
import { makeSelfSigned } from '../../../lib/util/x509.js';

function tempPaths(): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-trust-'));
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'x' };
}

/** A client certificate (PEM) made in DIR, as a client presents it. */
function clientCert(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  makeSelfSigned(dir, 'client', { subject: '/CN=t', extensions: [], what: 'a test client certificate' });
  return fs.readFileSync(path.join(dir, 'client.crt'), 'utf8');
}

test('a token is LXD-shaped, works once, and sets the glob', async (t) => {
  const p = tempPaths();
  const cert = clientCert(p.runDir);
  const { token } = await createToken(p, { name: 'alice', instances: 'a-*', expiresMs: 60_000, fingerprint: 'ff', addresses: ['10.0.0.1:8443'] });
  const doc = JSON.parse(Buffer.from(token, 'base64').toString()) as Record<string, unknown>;
  t.deepEqual(Object.keys(doc).sort(), ['addresses', 'client_name', 'expires_at', 'fingerprint', 'secret']);
  t.is(tokenSecret(token), doc.secret as string);
  // The store keeps a hash, never the secret.
  t.false(fs.readFileSync(path.join(p.stateDir, 'trust.json'), 'utf8').includes(doc.secret as string));
  t.is((fs.statSync(path.join(p.stateDir, 'trust.json')).mode & 0o777).toString(8), '600');
  const entry = await redeemToken(p, token, cert);
  t.like(entry, { name: 'alice', restricted: true, instances: 'a-*' });
  t.is(await redeemToken(p, token, cert), undefined, 'a second use is refused');
  t.is(loadTrust(p).tokens.length, 0);
  fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
});

test('the bare secret works as a password; a wrong one and an expired one do not', async (t) => {
  const p = tempPaths();
  const cert = clientCert(p.runDir);
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  t.is(await redeemToken(p, 'f'.repeat(64), cert), undefined);
  t.truthy(await redeemToken(p, tokenSecret(a.token), cert));
  const b = await createToken(p, { name: 'b', expiresMs: 1, fingerprint: 'ff', addresses: [] });
  await new Promise((r) => setTimeout(r, 20));
  t.is(await redeemToken(p, b.token, cert), undefined);
  fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
});

test('names are unique; remove takes a certificate by name or fingerprint, or a token', async (t) => {
  const p = tempPaths();
  const cert = clientCert(p.runDir);
  const a = await createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  await t.throwsAsync(createToken(p, { name: 'a', expiresMs: 60_000, fingerprint: 'ff', addresses: [] }), { message: /already in the trust store/ });
  await t.throwsAsync(createToken(p, { name: 'bad name', expiresMs: 60_000, fingerprint: 'ff', addresses: [] }), { message: /Invalid name/ });
  const entry = (await redeemToken(p, a.token, cert))!;
  await createToken(p, { name: 'pending', expiresMs: 60_000, fingerprint: 'ff', addresses: [] });
  t.deepEqual(await removeTrusted(p, 'pending'), { kind: 'token', name: 'pending' });
  t.deepEqual(await removeTrusted(p, entry.fingerprint.slice(0, 16)), { kind: 'certificate', name: 'a' });
  await t.throwsAsync(removeTrusted(p, 'a'), { message: /not in the trust store/ });
  fs.rmSync(path.dirname(p.stateDir), { recursive: true, force: true });
});
