import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Paths } from '../state/paths.js';
import { mkdirp } from '../util/fs.js';
import { withLock } from '../util/lock.js';
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
    // A private temp dir (0700): the key is never readable by others, even for a moment.
    const tmp = fs.mkdtempSync(path.join(p.stateDir, '.server-cert-'));
    const tmpKey = path.join(tmp, 'key');
    const tmpCert = path.join(tmp, 'crt');
    const host = sanName();
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
        `/O=tslxc/CN=root@${host}`,
        '-addext',
        `subjectAltName=DNS:${host}`,
        '-addext',
        'extendedKeyUsage=serverAuth',
        '-addext',
        'keyUsage=critical,digitalSignature,keyCertSign',
        '-keyout',
        tmpKey,
        '-out',
        tmpCert,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw new TslxcError(
        'Cannot make the server certificate',
        r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || `openssl exited ${r.status}`,
        'install openssl ("apt-get install openssl")',
      );
    }
    fs.chmodSync(tmpKey, 0o600);
    fs.renameSync(tmpKey, keyFile(p));
    fs.renameSync(tmpCert, certFile(p));
    fs.rmSync(tmp, { recursive: true, force: true });
    return read(p)!;
  });
}
