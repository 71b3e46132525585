import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { LabMemberCache } from '../lab/record.js';
import type { Paths } from '../state/paths.js';
import { restrictionOf } from './access.js';
import { loadTrust, tokenSecret, trustFile, updateTrust, type PendingToken, type SessionEntry } from './trust.js';
import type { Identity } from './types.js';

/**
 * Dashboard sessions: a trust token (from `tslxc config trust add` or `tslxc lab token`) redeemed
 * without a client certificate, for a browser. The token is consumed as a certificate's redemption
 * consumes it, and the session takes its place in the trust store (TSLXC_DIR/trust.json, with its
 * id only as SHA-256) under the token's name and restriction: what removes a certificate removes a
 * session too (`config trust remove NAME`, a lab member revoked by `lab up`), and its cookie then
 * opens nothing. In the state dir, not in the server's memory: the token that made a session works
 * once, so a server restart that forgot sessions would lock every lab member out until an
 * instructor made new tokens. The cookie is HttpOnly, Secure, SameSite=Strict; the page sends a
 * CSRF value, derived from the session's id, back on changes.
 */

export const SESSION_COOKIE = 'tslxc_session';
/** The header a session's changing requests carry, with the value the login answered. */
export const CSRF_HEADER = 'x-tslxc-csrf';
/** A lab runs for days: a week, then a new token. Logout ends it before. */
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

/** A live session: its trust store entry and the CSRF value of its id. */
export interface Session extends SessionEntry {
  csrf: string;
}

/** Where sessions were kept before they were trust store entries: moved into it once, then removed. */
export const legacySessionsFile = (p: Paths) => path.join(p.stateDir, 'sessions.json');

const sha256 = (s: string) => createHash('sha256').update(s).digest();
/** Only the holder of the cookie knows it; a page of another site can neither read the cookie nor this. */
const csrfOf = (id: string) => createHmac('sha256', id).update('tslxc dashboard csrf').digest('base64url').slice(0, 32);

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export function sessionCookie(id: string, expiresAt: string): string {
  const maxAge = Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000));
  return `${SESSION_COOKIE}=${id}; Path=/; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`;
}

export const clearedCookie = `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;

/**
 * The identity a session acts as: the token's name and restriction, over TLS. A lab member's
 * containers are read at each request, as for their certificate.
 */
export function sessionIdentity(s: SessionEntry, members: LabMemberCache): Identity {
  const instances = restrictionOf(s, members);
  return { protocol: 'tls', name: s.name, trusted: true, session: s.id_sha256.slice(0, SESSION_REF_LENGTH), ...(instances ? { instances } : {}) };
}

/** How much of a session id's hash Identity.session keeps: enough to find the session again. */
const SESSION_REF_LENGTH = 16;

/** What a session is limited to, in words, for the page ("" when it is not). */
export function scopeOf(s: SessionEntry): string {
  const parts = [...(s.instances !== undefined ? [s.instances] : []), ...(s.lab ? [`${s.lab.member} in lab ${s.lab.lab}`] : [])];
  return s.restricted ? parts.join(', ') || 'nothing' : '';
}

/**
 * A changing request from a session must come from the dashboard itself: its Origin names this
 * host (browsers send it on every cross-origin and every non-GET request) and it carries the
 * session's CSRF value, which a page of another site cannot read.
 */
export function sameOrigin(headers: IncomingHttpHeaders): boolean {
  const origin = headers.origin;
  const host = headers.host;
  if (!origin || !host) return false;
  try {
    const u = new URL(origin);
    return u.protocol === 'https:' && u.host === host;
  } catch {
    return false;
  }
}

export function csrfMatches(s: Session, headers: IncomingHttpHeaders): boolean {
  const given = headers[CSRF_HEADER];
  if (typeof given !== 'string' || given.length !== s.csrf.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(s.csrf));
}

interface LegacySession extends SessionEntry {
  csrf?: string;
  created_at?: string;
}

export class Sessions {
  /** the trust store's sessions by id hash, as last read, and what the file was then */
  private byHash = new Map<string, SessionEntry>();
  private seen = '';
  /** sessions.json's sessions until they are in the trust store */
  private legacy = new Map<string, SessionEntry>();
  readonly migrated: Promise<void>;

  constructor(private readonly paths: Paths) {
    // A move that fails keeps the former sessions working from memory; the next start tries again.
    this.migrated = this.migrate().catch(() => {});
  }

  /** Moves the sessions of sessions.json (before they were trust entries) into the trust store, once. */
  private async migrate(): Promise<void> {
    let doc: { sessions?: LegacySession[] };
    try {
      doc = JSON.parse(fs.readFileSync(legacySessionsFile(this.paths), 'utf8')) as { sessions?: LegacySession[] };
    } catch {
      return;
    }
    const t = Date.now();
    const live = (doc.sessions ?? []).filter((x) => typeof x.id_sha256 === 'string' && Date.parse(x.expires_at) > t);
    for (const x of live) this.legacy.set(x.id_sha256, x);
    await updateTrust(this.paths, (store) => {
      for (const x of live) {
        if ([...store.certificates, ...store.tokens, ...store.sessions].some((e) => e.name === x.name)) continue;
        store.sessions.push({
          name: x.name,
          id_sha256: x.id_sha256,
          restricted: x.restricted,
          ...(x.instances !== undefined ? { instances: x.instances } : {}),
          ...(x.lab ? { lab: x.lab } : {}),
          added_at: x.added_at ?? x.created_at ?? new Date(t).toISOString(),
          expires_at: x.expires_at,
        });
      }
    });
    fs.rmSync(legacySessionsFile(this.paths), { force: true });
    this.legacy.clear();
  }

  /** The trust store's sessions, read again only when the file changed (one stat a request). */
  private current(): Map<string, SessionEntry> {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(trustFile(this.paths));
    } catch {
      st = undefined;
    }
    const key = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '';
    if (key !== this.seen) {
      this.seen = key;
      this.byHash = new Map(st ? loadTrust(this.paths).sessions.map((x) => [x.id_sha256, x]) : []);
    }
    return this.byHash;
  }

  get count(): number {
    return this.current().size;
  }

  /** The live session a cookie names, or undefined. */
  lookup(cookieHeader: string | undefined): Session | undefined {
    const id = parseCookies(cookieHeader).get(SESSION_COOKIE);
    if (!id || !/^[0-9a-f]{64}$/.test(id)) return undefined;
    const hash = sha256(id).toString('hex');
    const entry = this.current().get(hash) ?? this.legacy.get(hash);
    if (!entry || Date.parse(entry.expires_at) <= Date.now()) return undefined;
    return { ...entry, csrf: csrfOf(id) };
  }

  /** Whether the session Identity.session names is still in the trust store (its websockets stay open while it is). */
  isLive(ref: string): boolean {
    const t = Date.now();
    for (const [hash, entry] of this.current()) if (hash.startsWith(ref) && Date.parse(entry.expires_at) > t) return true;
    for (const hash of this.legacy.keys()) if (hash.startsWith(ref)) return true;
    return false;
  }

  /**
   * Consumes the pending token `password` names (the whole token or its secret) and opens a
   * session with its name and restriction. Undefined when no current token matches.
   */
  async redeem(password: string): Promise<{ id: string; session: Session } | undefined> {
    const given = sha256(tokenSecret(password));
    const id = randomBytes(32).toString('hex');
    const t = Date.now();
    const entry = await updateTrust(this.paths, (store) => {
      // Every token is compared, so the time taken does not say which one nearly matched. A
      // metrics token is for a scraper, not a person: it opens no session (and stays unspent).
      let found: PendingToken | undefined;
      for (const k of store.tokens) if (timingSafeEqual(Buffer.from(k.secret_sha256, 'hex'), given) && !found && k.type !== 'metrics') found = k;
      if (!found) return undefined;
      store.tokens = store.tokens.filter((k) => k !== found);
      const made: SessionEntry = {
        name: found.name,
        id_sha256: sha256(id).toString('hex'),
        restricted: found.instances !== undefined || found.lab !== undefined,
        ...(found.instances !== undefined ? { instances: found.instances } : {}),
        ...(found.lab ? { lab: found.lab } : {}),
        added_at: new Date(t).toISOString(),
        expires_at: new Date(t + SESSION_TTL_MS).toISOString(),
      };
      store.sessions.push(made);
      return made;
    });
    return entry ? { id, session: { ...entry, csrf: csrfOf(id) } } : undefined;
  }

  /** Logout: the session leaves the trust store. */
  async end(s: SessionEntry): Promise<void> {
    if (!this.current().has(s.id_sha256)) return;
    await updateTrust(this.paths, (store) => {
      store.sessions = store.sessions.filter((x) => x.id_sha256 !== s.id_sha256);
    });
  }
}
