import crypto from 'node:crypto';
import { TslxcError } from '../errors.js';

/**
 * Public keys as OpenSSH writes them ("TYPE BASE64 [COMMENT]"), checked with ssh2's parser so a
 * typo, a truncated paste or — worse — a private key is refused before it reaches a container.
 */
export interface PublicKey {
  type: string;
  /** the wire-format key blob, base64 as in the file */
  base64: string;
  comment: string;
  /** "SHA256:..." as ssh-keygen -l prints it */
  fingerprint: string;
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a wire-format blob names (its first string). */
export function blobType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
}

export function keyFromBlob(blob: Buffer, comment = ''): PublicKey {
  return { type: blobType(blob), base64: blob.toString('base64'), comment, fingerprint: fingerprintOf(blob) };
}

export function formatKey(k: PublicKey): string {
  return `${k.type} ${k.base64}${k.comment ? ` ${k.comment}` : ''}`;
}

type ParseKey = typeof import('ssh2').utils.parseKey;

/**
 * Every key of a public key file (blank lines and # comments skipped). `source` names the file
 * in errors; `parseKey` is ssh2's (passed in so this module stays free of ssh2's import cost).
 */
export function parsePublicKeys(text: string, source: string, parseKey: ParseKey): PublicKey[] {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new TslxcError(`Refusing ${source}`, 'it holds a private key', 'give the .pub file beside it');
  }
  const keys: PublicKey[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `${source}, line ${i + 1}`;
    const parsed = parseKey(line);
    if (parsed instanceof Error || Array.isArray(parsed)) {
      const why = parsed instanceof Error ? parsed.message : 'it holds more than one key';
      throw new TslxcError(`Invalid public key in ${where}`, why, 'give an OpenSSH public key line such as "ssh-ed25519 AAAA... you@host"');
    }
    if (parsed.isPrivateKey()) throw new TslxcError(`Refusing ${where}`, 'it is a private key', 'give the public key (the .pub file)');
    const blob = parsed.getPublicSSH();
    const fields = line.split(/\s+/);
    // OpenSSH's comment is whatever follows the base64 blob.
    const comment = fields.length > 2 ? line.slice(line.indexOf(fields[1]) + fields[1].length).trim() : '';
    if (fields[1] !== blob.toString('base64')) {
      throw new TslxcError(`Invalid public key in ${where}`, 'expected "TYPE BASE64 [COMMENT]" (key options are not supported here)');
    }
    keys.push(keyFromBlob(blob, comment));
  });
  if (keys.length === 0) throw new TslxcError(`No public key in ${source}`, 'the file is empty or holds only comments');
  return keys;
}

/**
 * The keys of an authorized_keys file as lines, each with its key when it parses (lines with
 * options or unknown types are kept untouched, never rewritten or dropped).
 */
export interface AuthorizedLine {
  line: string;
  key?: PublicKey;
}

export function parseAuthorizedKeys(text: string): AuthorizedLine[] {
  return text
    .split('\n')
    .filter((l, i, all) => !(i === all.length - 1 && l === ''))
    .map((line) => {
      const m = /^(\S+)\s+([A-Za-z0-9+/]+={0,3})(?:\s+(.*))?$/.exec(line.trim());
      if (!m || line.trim().startsWith('#')) return { line };
      const blob = Buffer.from(m[2], 'base64');
      if (blobType(blob) !== m[1]) return { line };
      return { line, key: keyFromBlob(blob, m[3] ?? '') };
    });
}
