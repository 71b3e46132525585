import crypto from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import type { Paths } from '../state/paths.js';
import { listGatewayUsers, loginTarget, parseLoginName, type GatewayUser } from './users.js';

/**
 * Public-key authentication against users.yaml, re-read at every attempt (so `gateway user add`
 * and labs take effect without a restart). A login is allowed when the offered key is one of the
 * user's keys, the container it names is one of the user's containers, and — on the signed
 * attempt — the signature over the session id verifies with that key.
 */

/** Parsed public keys by their OpenSSH line: users.yaml is re-read often, the keys rarely change. */
const parsedKeys = new Map<string, ParsedKey | null>();

export function parsePublicKeyLine(line: string): ParsedKey | undefined {
  if (!parsedKeys.has(line)) {
    const k = ssh2.utils.parseKey(line);
    const ok = !(k instanceof Error) && !Array.isArray(k) && !k.isPrivateKey() ? k : null;
    if (parsedKeys.size > 10_000) parsedKeys.clear();
    parsedKeys.set(line, ok);
  }
  return parsedKeys.get(line) ?? undefined;
}

/** A key blob compared without an early exit on the first differing byte, nor on the first key. */
export function findKey(keys: readonly string[], blob: Buffer): ParsedKey | undefined {
  let found: ParsedKey | undefined;
  for (const line of keys) {
    const k = parsePublicKeyLine(line);
    if (!k) continue;
    const mine = k.getPublicSSH();
    const same = mine.length === blob.length && crypto.timingSafeEqual(mine, blob);
    if (same && !found) found = k;
  }
  return found;
}

export type AuthVerdict = { ok: true; user: GatewayUser; container: string; key: ParsedKey } | { ok: false; reason: string };

/** Who may log in as `login` with the key `blob` (the signature is checked by the caller: verifySignature). */
export function authorize(p: Paths, login: string, blob: Buffer): AuthVerdict {
  const name = parseLoginName(login);
  if (!name) return { ok: false, reason: 'not a valid login name' };
  const users = listGatewayUsers(p);
  const user = users.find((u) => u.name === name.user);
  // An unknown user still costs a comparison, so the answer's timing does not tell names apart.
  const key = findKey(user?.keys ?? [], blob);
  if (!user) return { ok: false, reason: 'no such user' };
  if (!key) return { ok: false, reason: 'key not listed for this user' };
  const container = loginTarget(user, name);
  if (!container) return { ok: false, reason: name.container ? `container "${name.container}" is not one of this user's` : 'the user has no container' };
  return { ok: true, user, container, key };
}

export function verifySignature(key: ParsedKey, blob: Buffer, signature: Buffer, hashAlgo?: string): boolean {
  try {
    return key.verify(blob, signature, hashAlgo) === true;
  } catch {
    return false;
  }
}
