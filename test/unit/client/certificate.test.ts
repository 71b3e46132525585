import { spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';

/**
 * The client certificate is made once per user even when several first commands start together:
 * every one of them ends with the same pair, and the key on disk is the certificate's.
 */
const moduleUrl = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../lib/client/certificate.js')).href;

function make(dir: string): Promise<{ code: number; out: string; err: string }> {
  const script = `import(${JSON.stringify(moduleUrl)}).then((m) => process.stdout.write(m.ensureClientCertificate(${JSON.stringify(dir)}).fingerprint))`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code: code ?? 1, out, err }));
  });
}

test('several processes making the client certificate at once agree on one matching pair', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-clientcert-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (let round = 0; round < 3; round++) {
    const dir = path.join(root, `conf${round}`);
    const all = await Promise.all(Array.from({ length: 6 }, () => make(dir)));
    for (const r of all) t.is(r.code, 0, r.err);
    const prints = new Set(all.map((r) => r.out));
    t.is(prints.size, 1, [...prints].join(' '));
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'client.crt')));
    const key = createPublicKey(fs.readFileSync(path.join(dir, 'client.key')));
    t.true(cert.publicKey.equals(key), 'client.key is the key of client.crt');
    t.is(fs.statSync(path.join(dir, 'client.key')).mode & 0o777, 0o600);
    // Nothing of the making is left: no temp dirs, no lock file.
    t.deepEqual(fs.readdirSync(dir).sort(), ['client.crt', 'client.key']);
  }
});
