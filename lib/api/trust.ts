import { createHash, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { locksDir, type Paths } from '../state/paths.js';
import { mkdirp, readTextIfExists, writeFileAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { ensureServerCertificate, fingerprintOf } from './certificate.js';

/**
 * The trust store (TSLXC_DIR/trust.json, 0600): the client certificates the HTTPS API trusts, the
 * pending one-time tokens of `tslxc config trust add`, and the dashboard sessions tokens were
 * redeemed for. Both the CLI (without a server) and the server change it, under one lock. A
 * token's secret and a session's id are kept only as their SHA-256; a token works once and expires.
 */

/** A lab member's token or certificate: restricted to that member's containers as `lab up` last recorded them. */
export interface LabMembership {
  lab: string;
  member: string;
}

export interface TrustedCertificate {
  name: string;
  type: 'client' | 'metrics';
  fingerprint: string;
  /** PEM */
  certificate: string;
  restricted: boolean;
  /** a restricted certificate's instance glob */
  instances?: string;
  /** a lab member's certificate (restricted to the member's containers) */
  lab?: LabMembership;
  /** the certificate's own notAfter (RFC 3339): past it, the certificate is no longer trusted */
  expires_at?: string;
  added_at: string;
}

export interface PendingToken {
  name: string;
  secret_sha256: string;
  instances?: string;
  lab?: LabMembership;
  /** the certificate type the token trusts (absent: client) */
  type?: 'client' | 'metrics';
  expires_at: string;
  created_at: string;
}

/**
 * A dashboard session (lib/api/session.ts): what a token was redeemed for by a browser instead of a
 * certificate, with the token's name and restriction. It is trusted while it is here: `config trust
 * remove NAME`, a lab member's revocation, a logout or its expiry removes it, and its cookie opens
 * nothing more.
 */
export interface SessionEntry {
  name: string;
  /** SHA-256 (hex) of the session's id, the cookie's value */
  id_sha256: string;
  restricted: boolean;
  instances?: string;
  lab?: LabMembership;
  added_at: string;
  expires_at: string;
}

export interface TrustStore {
  certificates: TrustedCertificate[];
  tokens: PendingToken[];
  sessions: SessionEntry[];
}

export const trustFile = (p: Paths) => path.join(p.stateDir, 'trust.json');
/** The addresses a running `tslxc serve` listens on, for the tokens' `addresses`. */
export const addressesFile = (p: Paths) => path.join(p.stateDir, 'serve-addresses.json');

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export function loadTrust(p: Paths): TrustStore {
  let text: string;
  try {
    text = fs.readFileSync(trustFile(p), 'utf8');
  } catch {
    return { certificates: [], tokens: [], sessions: [] };
  }
  try {
    const doc = JSON.parse(text) as Partial<TrustStore>;
    return { certificates: doc.certificates ?? [], tokens: doc.tokens ?? [], sessions: doc.sessions ?? [] };
  } catch (err) {
    throw new TslxcError(`Cannot read the trust store ${trustFile(p)}`, (err as Error).message, 'fix or remove the file');
  }
}

export function updateTrust<T>(p: Paths, fn: (store: TrustStore) => T): Promise<T> {
  return withLock(locksDir(p), 'trust', () => {
    const store = loadTrust(p);
    const t = Date.now();
    store.tokens = store.tokens.filter((k) => Date.parse(k.expires_at) > t);
    store.sessions = store.sessions.filter((s) => Date.parse(s.expires_at) > t);
    const result = fn(store);
    mkdirp(p.stateDir, 0o711);
    writeFileAtomic(trustFile(p), `${JSON.stringify(store, null, 2)}\n`, 0o600);
    return result;
  });
}

/** A certificate is trusted while it is in the store and not past its own expiry. */
export function isCurrent(c: TrustedCertificate, t = Date.now()): boolean {
  return !c.expires_at || Date.parse(c.expires_at) > t;
}

function nameTaken(store: TrustStore, name: string): boolean {
  return [...store.certificates, ...store.tokens, ...store.sessions].some((e) => e.name === name);
}

export function validateTrustName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$/.test(name))
    throw new TslxcError(`Invalid name "${name.slice(0, 64)}"`, 'expected letters, digits, "-", "_", ".", "@" (at most 63)', undefined, { kind: 'invalid' });
  return name;
}

export function validateGlob(glob: string): string {
  if (!/^[a-z0-9*?-]{1,63}$/.test(glob))
    throw new TslxcError(`Invalid instance glob "${glob.slice(0, 64)}"`, 'expected instance-name characters with * and ?', 'e.g. --instances "alice-*"', {
      kind: 'invalid',
    });
  return glob;
}

/** LXD's token: base64 of JSON {client_name, fingerprint, addresses, secret, expires_at}. */
export function encodeToken(t: { client_name: string; fingerprint: string; addresses: string[]; secret: string; expires_at: string }): string {
  return Buffer.from(JSON.stringify(t)).toString('base64');
}

/** The secret a `password` carries: the whole token's, or the password itself. */
export function tokenSecret(password: string): string {
  try {
    const doc = JSON.parse(Buffer.from(password, 'base64').toString('utf8')) as { secret?: unknown };
    if (doc && typeof doc.secret === 'string') return doc.secret;
  } catch {
    // not a token: a bare secret
  }
  return password;
}

export interface TokenRequest {
  name: string;
  instances?: string;
  /** a lab member's token: the name is made unique (alice@lab, alice@lab-2, ...) as a member may use several clients */
  lab?: LabMembership;
  type?: 'client' | 'metrics';
  expiresMs: number;
}

export async function createToken(
  p: Paths,
  opts: TokenRequest & { fingerprint: string; addresses: string[] },
): Promise<{ token: string; name: string; expiresAt: string }> {
  const wanted = validateTrustName(opts.name);
  if (opts.instances !== undefined) validateGlob(opts.instances);
  const secret = randomBytes(32).toString('hex');
  const t = new Date();
  const expiresAt = new Date(t.getTime() + opts.expiresMs).toISOString();
  const name = await updateTrust(p, (store) => {
    let name = wanted;
    for (let n = 2; opts.lab && nameTaken(store, name); n++) name = validateTrustName(`${wanted}-${n}`);
    if (nameTaken(store, name))
      throw new TslxcError(`The name "${name}" is already in the trust store`, undefined, 'pick another, or remove it first ("tslxc config trust remove")', {
        kind: 'conflict',
      });
    store.tokens.push({
      name,
      secret_sha256: sha256(secret).toString('hex'),
      ...(opts.instances !== undefined ? { instances: opts.instances } : {}),
      ...(opts.lab ? { lab: { lab: opts.lab.lab, member: opts.lab.member } } : {}),
      ...(opts.type && opts.type !== 'client' ? { type: opts.type } : {}),
      expires_at: expiresAt,
      created_at: t.toISOString(),
    });
    return name;
  });
  return {
    token: encodeToken({ client_name: name, fingerprint: opts.fingerprint, addresses: opts.addresses, secret, expires_at: expiresAt }),
    name,
    expiresAt,
  };
}

/**
 * A token naming this server (its certificate's fingerprint, and the addresses a running
 * `tslxc serve --listen` recorded): what `config trust add`, `lab token` and the lab API hand out.
 */
export async function issueToken(p: Paths, opts: TokenRequest): Promise<{ token: string; name: string; expiresAt: string; addresses: string[] }> {
  const cert = await ensureServerCertificate(p);
  let addresses: string[] = [];
  try {
    const doc = JSON.parse(readTextIfExists(addressesFile(p)) ?? '[]') as unknown;
    if (Array.isArray(doc)) addresses = doc.filter((a): a is string => typeof a === 'string');
  } catch {
    addresses = [];
  }
  const r = await createToken(p, { ...opts, fingerprint: cert.fingerprint, addresses });
  return { ...r, addresses };
}

/**
 * Forgets a lab's members who are not in `keep` (all of them without it): their certificates,
 * pending tokens and dashboard sessions. Returns the names removed.
 */
export async function revokeLabMembers(p: Paths, lab: string, keep?: readonly string[]): Promise<string[]> {
  // Most ups have nothing to revoke: the store is not rewritten then.
  const now = loadTrust(p);
  if (![...now.certificates, ...now.tokens, ...now.sessions].some((e) => e.lab?.lab === lab && !(keep ?? []).includes(e.lab.member))) return [];
  return updateTrust(p, (store) => {
    const gone = (e: { lab?: LabMembership }) => e.lab?.lab === lab && !(keep ?? []).includes(e.lab.member);
    const removed = [...store.certificates.filter(gone), ...store.tokens.filter(gone), ...store.sessions.filter(gone)].map((e) => e.name);
    store.certificates = store.certificates.filter((c) => !gone(c));
    store.tokens = store.tokens.filter((k) => !gone(k));
    store.sessions = store.sessions.filter((s) => !gone(s));
    return removed;
  });
}

/** Per member of a lab: how many current certificates, dashboard sessions and pending tokens they have. */
export function labTrust(p: Paths, lab: string): Map<string, { certificates: number; sessions: number; tokens: number }> {
  const store = loadTrust(p);
  const out = new Map<string, { certificates: number; sessions: number; tokens: number }>();
  const at = (m: string) => out.get(m) ?? out.set(m, { certificates: 0, sessions: 0, tokens: 0 }).get(m)!;
  const t = Date.now();
  for (const c of store.certificates) if (c.lab?.lab === lab && isCurrent(c, t)) at(c.lab.member).certificates++;
  for (const s of store.sessions) if (s.lab?.lab === lab && Date.parse(s.expires_at) > t) at(s.lab.member).sessions++;
  for (const k of store.tokens) if (k.lab?.lab === lab && Date.parse(k.expires_at) > t) at(k.lab.member).tokens++;
  return out;
}

/** A certificate's store entry from its PEM or base64 DER. */
export function parseCertificate(text: string): { pem: string; fingerprint: string; notAfter: string } {
  let x: X509Certificate;
  try {
    x = new X509Certificate(text.includes('-----BEGIN') ? text : Buffer.from(text, 'base64'));
  } catch {
    throw new TslxcError('Invalid certificate', 'expected PEM or base64 DER', undefined, { kind: 'invalid' });
  }
  return { pem: x.toString(), fingerprint: fingerprintOf(x), notAfter: new Date(x.validTo).toISOString() };
}

/**
 * Trusts `certificate` in exchange for a pending token whose secret `password` carries, and
 * removes the token. Undefined when no current token matches.
 */
export async function redeemToken(p: Paths, password: string, certificate: string): Promise<TrustedCertificate | undefined> {
  const given = sha256(tokenSecret(password));
  const cert = parseCertificate(certificate);
  return updateTrust(p, (store) => {
    // Every token is compared, so the time taken does not say which one nearly matched.
    let found: PendingToken | undefined;
    for (const k of store.tokens) if (timingSafeEqual(Buffer.from(k.secret_sha256, 'hex'), given) && !found) found = k;
    if (!found) return undefined;
    store.tokens = store.tokens.filter((k) => k !== found);
    store.certificates = store.certificates.filter((c) => c.fingerprint !== cert.fingerprint);
    const entry: TrustedCertificate = {
      name: found.name,
      type: found.type ?? 'client',
      fingerprint: cert.fingerprint,
      certificate: cert.pem,
      restricted: found.instances !== undefined || found.lab !== undefined,
      ...(found.instances !== undefined ? { instances: found.instances } : {}),
      ...(found.lab ? { lab: found.lab } : {}),
      expires_at: cert.notAfter,
      added_at: new Date().toISOString(),
    };
    store.certificates.push(entry);
    return entry;
  });
}

export async function addCertificate(
  p: Paths,
  opts: { name: string; certificate: string; type?: 'client' | 'metrics'; instances?: string },
): Promise<TrustedCertificate> {
  const cert = parseCertificate(opts.certificate);
  const name = validateTrustName(opts.name);
  if (opts.instances !== undefined) validateGlob(opts.instances);
  return updateTrust(p, (store) => {
    if (store.certificates.some((c) => c.fingerprint === cert.fingerprint))
      throw new TslxcError('Certificate already in trust store', undefined, undefined, { kind: 'conflict' });
    const entry: TrustedCertificate = {
      name,
      type: opts.type ?? 'client',
      fingerprint: cert.fingerprint,
      certificate: cert.pem,
      restricted: opts.instances !== undefined,
      ...(opts.instances !== undefined ? { instances: opts.instances } : {}),
      expires_at: cert.notAfter,
      added_at: new Date().toISOString(),
    };
    store.certificates.push(entry);
    return entry;
  });
}

/** Changes one certificate's entry under the store's lock (the API's PUT/PATCH); the change may throw. */
export async function updateCertificate(p: Paths, fingerprint: string, change: (c: TrustedCertificate) => void): Promise<TrustedCertificate> {
  return updateTrust(p, (store) => {
    const c = store.certificates.find((x) => x.fingerprint === fingerprint);
    if (!c) throw new TslxcError('Certificate not found', undefined, undefined, { kind: 'not-found' });
    change(c);
    validateTrustName(c.name);
    if (c.instances !== undefined) validateGlob(c.instances);
    if (store.certificates.some((x) => x !== c && x.name === c.name) || store.tokens.some((k) => k.name === c.name))
      throw new TslxcError(`The name "${c.name}" is already in the trust store`, undefined, 'pick another', { kind: 'conflict' });
    return c;
  });
}

/**
 * Removes a certificate (by name or a fingerprint prefix of at least 12 characters), a pending
 * token or a dashboard session (by name). Returns what was removed.
 */
export async function removeTrusted(p: Paths, which: string): Promise<{ kind: 'certificate' | 'token' | 'session'; name: string }> {
  return updateTrust(p, (store) => {
    const byFp = which.length >= 12 && /^[0-9a-f]+$/.test(which) ? store.certificates.filter((c) => c.fingerprint.startsWith(which)) : [];
    const byName = store.certificates.filter((c) => c.name === which);
    const certs = byName.length ? byName : byFp;
    if (certs.length > 1) throw new TslxcError(`"${which}" names ${certs.length} certificates`, undefined, 'give a longer fingerprint', { kind: 'conflict' });
    if (certs.length === 1) {
      store.certificates = store.certificates.filter((c) => c !== certs[0]);
      return { kind: 'certificate' as const, name: certs[0]!.name };
    }
    const token = store.tokens.find((k) => k.name === which);
    if (token) {
      store.tokens = store.tokens.filter((k) => k !== token);
      return { kind: 'token' as const, name: token.name };
    }
    const session = store.sessions.find((s) => s.name === which);
    if (session) {
      store.sessions = store.sessions.filter((s) => s !== session);
      return { kind: 'session' as const, name: session.name };
    }
    throw new TslxcError(`"${which}" is not in the trust store`, undefined, '"tslxc config trust list" shows it', { kind: 'not-found' });
  });
}

/** The trust store as the server reads it for every request: re-read only when the file changed. */
export class TrustCache {
  private mtimeMs = -1;
  private size = -1;
  private byFingerprint = new Map<string, TrustedCertificate>();

  constructor(private readonly paths: Paths) {}

  lookup(fingerprint: string): TrustedCertificate | undefined {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(trustFile(this.paths));
    } catch {
      st = undefined;
    }
    if (!st) this.byFingerprint.clear();
    else if (st.mtimeMs !== this.mtimeMs || st.size !== this.size) {
      this.mtimeMs = st.mtimeMs;
      this.size = st.size;
      this.byFingerprint = new Map(loadTrust(this.paths).certificates.map((c) => [c.fingerprint, c]));
    }
    const c = this.byFingerprint.get(fingerprint);
    return c && isCurrent(c) ? c : undefined;
  }
}
