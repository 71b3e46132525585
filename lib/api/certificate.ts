import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Paths } from '../state/paths.js';
import { mkdirp } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { makeSelfSigned } from '../util/x509.js';
import { locksDir } from '../state/paths.js';

/**
 * The server's self-signed certificate (TSLXC_DIR/server.crt and server.key), made once. The `lxc`
 * client pins it as its only CA and checks the name against its first DNS SAN, so it carries the
 * hostname as one, and serverAuth; an EC P-384 key, as LXD's.
 */

export interface ServerCertificate {
  cert: string;
  key: string;
  /** LXD's form: sha256 of the DER, lowercase hex, no colons */
  fingerprint: string;
}

export const certFile = (p: Paths) => path.join(p.stateDir, 'server.crt');
export const keyFile = (p: Paths) => path.join(p.stateDir, 'server.key');

export function fingerprintOf(cert: X509Certificate | string | Buffer): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return x.fingerprint256.replace(/:/g, '').toLowerCase();
}

function read(p: Paths): ServerCertificate | undefined {
  try {
    const cert = fs.readFileSync(certFile(p), 'utf8');
    const key = fs.readFileSync(keyFile(p), 'utf8');
    return { cert, key, fingerprint: fingerprintOf(cert) };
  } catch {
    return undefined;
  }
}

/** The DNS name the certificate is for: the hostname, made a valid SAN. */
function sanName(): string {
  const h = os
    .hostname()
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-');
  return h || 'localhost';
}

export async function ensureServerCertificate(p: Paths): Promise<ServerCertificate> {
  const have = read(p);
  if (have) return have;
  return withLock(locksDir(p), 'server-cert', () => {
    const again = read(p);
    if (again) return again;
    mkdirp(p.stateDir, 0o711);
    const host = sanName();
    makeSelfSigned(p.stateDir, 'server', {
      subject: `/O=tslxc/CN=root@${host}`,
      extensions: [`subjectAltName=DNS:${host}`, 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature,keyCertSign'],
      what: 'the server certificate',
    });
    return read(p)!;
  });
}
