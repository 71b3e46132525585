import fs from 'node:fs';
import path from 'node:path';
import { TslxcError, isErrno } from '../errors.js';
import type { Paths } from '../state/paths.js';
import { withLock } from '../util/lock.js';
import { locksDir } from '../state/paths.js';
import { ed25519KeyPair } from './keygen.js';

/**
 * tslxc's own SSH keypair, STATE/ssh/id_ed25519{,.pub}: its public key goes into the root
 * authorized_keys of containers made from images that run sshd, so `tslxc ssh` logs in without a
 * password. Made on first use; the private key is 0600 in a 0700 dir (OpenSSH refuses a private
 * key that others can read, and so should we).
 */
export const sshDir = (p: Paths) => path.join(p.stateDir, 'ssh');
export const privateKeyFile = (p: Paths) => path.join(sshDir(p), 'id_ed25519');
export const publicKeyFile = (p: Paths) => `${privateKeyFile(p)}.pub`;

export interface Keypair {
  privateKey: string;
  /** one line, OpenSSH format: "ssh-ed25519 AAAA... tslxc@HOST" */
  publicKey: string;
  privateKeyFile: string;
}

function readKeypair(p: Paths): Keypair | undefined {
  try {
    const privateKey = fs.readFileSync(privateKeyFile(p), 'utf8');
    const publicKey = fs.readFileSync(publicKeyFile(p), 'utf8').trim();
    return { privateKey, publicKey, privateKeyFile: privateKeyFile(p) };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new TslxcError(`Cannot read tslxc's SSH key in ${sshDir(p)}`, (err as Error).message, 'check the files, or remove the dir to make a new key');
  }
}

/**
 * An Ed25519 public key line whose key is not 32 bytes. Keys made by tslxc before keygen.ts came
 * from ssh2's generator, which made about one in 200 with 31 bytes: no SSH implementation accepts
 * such a key, so `tslxc ssh` could never work with it.
 */
export function malformedEd25519(line: string): boolean {
  const [type, b64] = line.trim().split(/\s+/);
  if (type !== 'ssh-ed25519' || !b64) return false;
  const blob = Buffer.from(b64, 'base64');
  if (blob.length < 4) return true;
  const typeLen = blob.readUInt32BE(0);
  const at = 4 + typeLen;
  return blob.length < at + 4 || blob.readUInt32BE(at) !== 32 || blob.length !== at + 4 + 32;
}

/**
 * The keypair, made (under a lock, so two first uses make one key) when missing, or when the one
 * on disk is malformed (kept beside as id_ed25519.malformed{,.pub}).
 */
export async function ensureKeypair(p: Paths): Promise<Keypair> {
  const existing = readKeypair(p);
  if (existing && !malformedEd25519(existing.publicKey)) return existing;
  return withLock(
    locksDir(p),
    'ssh-keypair',
    async () => {
      const again = readKeypair(p);
      if (again && !malformedEd25519(again.publicKey)) return again;
      if (again) {
        fs.renameSync(privateKeyFile(p), `${privateKeyFile(p)}.malformed`);
        fs.renameSync(publicKeyFile(p), `${privateKeyFile(p)}.malformed.pub`);
      }
      const pair = ed25519KeyPair(`tslxc@${hostName()}`);
      const dir = sshDir(p);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.chmodSync(dir, 0o700);
      // Private key first and the public key last: a reader that finds the .pub finds a whole pair.
      writeExclusive(privateKeyFile(p), pair.private, 0o600);
      writeExclusive(publicKeyFile(p), `${pair.public.trim()}\n`, 0o644);
      return readKeypair(p)!;
    },
    { purpose: "tslxc's SSH key" },
  );
}

function writeExclusive(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function hostName(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim() || 'host';
  } catch {
    return 'host';
  }
}
