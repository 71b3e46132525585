import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { TslxcError, isErrno } from '../errors.js';
import type { Paths } from '../state/paths.js';
import { gatewayDir } from './users.js';
import { ed25519KeyPair } from '../ssh/keygen.js';

export const hostKeyFile = (p: Paths) => path.join(gatewayDir(p), 'ssh_host_ed25519_key');

export interface HostKey {
  /** The private key in OpenSSH format, as ssh2's Server takes it. */
  privateKey: string;
  /** "SHA256:..." as `ssh-keygen -lf` and OpenSSH's first-connect prompt show it. */
  fingerprint: string;
}

/**
 * The gateway's ed25519 host key: made on first run and kept, so clients that learnt it once
 * never see a "host key changed" warning after a restart. Written to a private temp file and
 * hard-linked into place, so two gateways starting at once agree on one key.
 */
export function loadOrCreateHostKey(p: Paths): HostKey {
  const file = hostKeyFile(p);
  fs.mkdirSync(gatewayDir(p), { recursive: true, mode: 0o700 });
  if (!fs.existsSync(file)) {
    const pair = ed25519KeyPair('tslxc-gateway');
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, pair.private, { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
    throw new TslxcError(
      `The gateway's host key ${file} is not private`,
      `its mode is ${(st.mode & 0o777).toString(8)}, owned by uid ${st.uid}`,
      `make it yours with mode 0600 (chmod 600 ${file}) or remove it to make a new one`,
    );
  }
  const privateKey = fs.readFileSync(file, 'utf8');
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new TslxcError(
      `The gateway's host key ${file} cannot be read`,
      parsed instanceof Error ? parsed.message : 'it holds several keys',
      'remove it: a new one is made at the next start (clients will then see a changed host key)',
    );
  }
  return { privateKey, fingerprint: keyFingerprint(parsed.getPublicSSH()) };
}

/** OpenSSH's SHA256 fingerprint of a public key blob. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
