import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { tryLock, type Lock } from '../util/lock.js';
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

/** The pair, once client.crt is there: it is renamed in after its key, so its key is the one beside it. */
function read(dir: string): ClientCertificate | undefined {
  try {
    const cert = fs.readFileSync(path.join(dir, 'client.crt'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'client.key'), 'utf8');
    return { cert, key, fingerprint: fingerprintOf(cert) };
  } catch {
    return undefined;
  }
}

const LOCK_KEY = 'client-certificate';
const WAIT_MS = 60_000;

/** A blocking sleep: the certificate is made once per user, before any request, and callers are synchronous. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Two first commands at once would each make a pair, and their renames could interleave into one's
 * key beside the other's certificate: the maker holds a lock, and whoever waited for it reads what
 * the holder made instead of making another.
 */
export function ensureClientCertificate(dir = clientDir()): ClientCertificate {
  const have = read(dir);
  if (have) return have;
  mkdirp(dir, 0o700);
  const deadline = Date.now() + WAIT_MS;
  let lock: Lock | undefined;
  for (let delay = 5; !(lock = tryLock(dir, LOCK_KEY)); delay = Math.min(delay * 2, 100)) {
    if (Date.now() > deadline)
      throw new TslxcError('Timed out waiting for the client certificate', `another tslxc command is making it in ${dir}`, 'wait for it and try again');
    pause(delay);
  }
  try {
    const made = read(dir);
    if (made) return made;
    const user = os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '-') || 'user';
    const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
    makeSelfSigned(dir, 'client', { subject: `/O=tslxc/CN=${user}@${host}`, extensions: ['extendedKeyUsage=clientAuth'], what: 'the client certificate' });
    return read(dir)!;
  } finally {
    lock.release();
  }
}
