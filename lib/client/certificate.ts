import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdirp } from '../util/fs.js';
import { makeSelfSigned } from '../util/x509.js';
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
  const user = os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '-') || 'user';
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
  makeSelfSigned(dir, 'client', { subject: `/O=tslxc/CN=${user}@${host}`, extensions: ['extendedKeyUsage=clientAuth'], what: 'the client certificate' });
  return read(dir)!;
}
