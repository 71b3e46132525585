import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { fingerprintOf } from '../api/certificate.js';
import { clientDir } from './config.js';

/**
 * The client certificate this user presents to every remote (client.crt, client.key in the
 * client's directory), made on first use as lxc makes ~/.config/lxc/client.crt: self-signed, EC
 * P-384, clientAuth. A server trusts it by its fingerprint once a token or password was accepted.
 */

export interface ClientCertificate {
  cert: string;
  key: string;
  fingerprint: string;
}

function read(dir: string): ClientCertificate | undefined {
  try {
    const cert = fs.readFileSync(path.join(dir, 'client.crt'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'client.key'), 'utf8');
    return { cert, key, fingerprint: fingerprintOf(cert) };
  } catch {
    return undefined;
  }
}

export function ensureClientCertificate(dir = clientDir()): ClientCertificate {
  const have = read(dir);
  if (have) return have;
  mkdirp(dir, 0o700);
  // A private temp dir: the key is never readable by others, and a half-made pair is never seen.
  const tmp = fs.mkdtempSync(path.join(dir, '.client-cert-'));
  const user = os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '-') || 'user';
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:secp384r1',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      `/O=tslxc/CN=${user}@${host}`,
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-keyout',
      path.join(tmp, 'client.key'),
      '-out',
      path.join(tmp, 'client.crt'),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new TslxcError(
      'Cannot make the client certificate',
      r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || `openssl exited ${r.status}`,
      'install openssl ("apt-get install openssl")',
    );
  }
  fs.chmodSync(path.join(tmp, 'client.key'), 0o600);
  // The key first: a client.crt present means its key is too.
  fs.renameSync(path.join(tmp, 'client.key'), path.join(dir, 'client.key'));
  fs.renameSync(path.join(tmp, 'client.crt'), path.join(dir, 'client.crt'));
  fs.rmSync(tmp, { recursive: true, force: true });
  return read(dir)!;
}
