import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { LabMemberCache } from '../lab/record.js';
import type { Paths } from '../state/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import { restrictionOf } from './access.js';
import { tokenSecret, updateTrust, type LabMembership, type PendingToken } from './trust.js';
import type { Identity } from './types.js';

/**
 * Dashboard sessions: a trust token (from `tslxc config trust add` or `tslxc lab token`) redeemed
 * without a client certificate, for a browser. The token is consumed as a certificate's redemption
 * consumes it, and the session carries its restriction. A session is an opaque random id in an
 * HttpOnly, Secure, SameSite=Strict cookie, plus a CSRF value the page sends back on changes.
 *
 * Sessions are kept in the state dir (TSLXC_DIR/sessions.json, 0600, ids only as SHA-256), not only
 * in memory: the token that made a session works once, so a server restart that forgot sessions
 * would lock every lab member out until an instructor made new tokens. Only one server runs on a
 * state (serve.lock), so the server's map is the truth and the file its copy.
 */

export const SESSION_COOKIE = 'tslxc_session';
/** The header a session's changing requests carry, with the value the login answered. */
export const CSRF_HEADER = 'x-tslxc-csrf';
/** A lab runs for days: a week, then a new token. Logout ends it before. */
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export interface Session {
  id_sha256: string;
  /** the token's name: the audit log's "who" */
  name: string;
  /** the token's restriction, as a certificate redeemed with it would have: a glob, a lab member */
  restricted: boolean;
  instances?: string;
  lab?: LabMembership;
  csrf: string;
  created_at: string;
  expires_at: string;
}

export const sessionsFile = (p: Paths) => path.join(p.stateDir, 'sessions.json');

const sha256 = (s: string) => createHash('sha256').update(s).digest();

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
 * containers are read at each request, as for their certificate: a member removed from the lab
 * (or a lab taken down) sees nothing more.
 */
export function sessionIdentity(s: Session, members: LabMemberCache): Identity {
  const instances = restrictionOf(s, members);
  return { protocol: 'tls', name: s.name, trusted: true, session: s.id_sha256.slice(0, 12), ...(instances ? { instances } : {}) };
}

/** What a session is limited to, in words, for the page ("" when it is not). */
export function scopeOf(s: Session): string {
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

export class Sessions {
  private readonly byHash = new Map<string, Session>();

  constructor(private readonly paths: Paths) {
    let doc: { sessions?: Session[] } = {};
    try {
      doc = JSON.parse(fs.readFileSync(sessionsFile(paths), 'utf8')) as { sessions?: Session[] };
    } catch {
      // none yet, or unreadable: start without sessions (their users log in again)
    }
    const t = Date.now();
    for (const s of doc.sessions ?? []) if (Date.parse(s.expires_at) > t) this.byHash.set(s.id_sha256, s);
  }

  private save(): void {
    const t = Date.now();
    for (const [k, s] of this.byHash) if (Date.parse(s.expires_at) <= t) this.byHash.delete(k);
    writeFileAtomic(sessionsFile(this.paths), `${JSON.stringify({ sessions: [...this.byHash.values()] }, null, 2)}\n`, 0o600);
  }

  get count(): number {
    return this.byHash.size;
  }

  /** The live session a cookie names, or undefined. */
  lookup(cookieHeader: string | undefined): Session | undefined {
    const id = parseCookies(cookieHeader).get(SESSION_COOKIE);
    if (!id || !/^[0-9a-f]{64}$/.test(id)) return undefined;
    const s = this.byHash.get(sha256(id).toString('hex'));
    if (!s) return undefined;
    if (Date.parse(s.expires_at) <= Date.now()) {
      this.byHash.delete(s.id_sha256);
      return undefined;
    }
    return s;
  }

  /**
   * Consumes the pending token `password` names (the whole token or its secret) and opens a
   * session with its name and restriction. Undefined when no current token matches.
   */
  async redeem(password: string): Promise<{ id: string; session: Session } | undefined> {
    const given = sha256(tokenSecret(password));
    const token = await updateTrust(this.paths, (store) => {
      // Every token is compared, so the time taken does not say which one nearly matched. A
      // metrics token is for a scraper, not a person: it opens no session (and stays unspent).
      let found: PendingToken | undefined;
      for (const k of store.tokens) if (timingSafeEqual(Buffer.from(k.secret_sha256, 'hex'), given) && !found && k.type !== 'metrics') found = k;
      if (found) store.tokens = store.tokens.filter((k) => k !== found);
      return found;
    });
    if (!token) return undefined;
    const id = randomBytes(32).toString('hex');
    const t = Date.now();
    const session: Session = {
      id_sha256: sha256(id).toString('hex'),
      name: token.name,
      restricted: token.instances !== undefined || token.lab !== undefined,
      ...(token.instances !== undefined ? { instances: token.instances } : {}),
      ...(token.lab ? { lab: token.lab } : {}),
      csrf: randomBytes(24).toString('base64url'),
      created_at: new Date(t).toISOString(),
      expires_at: new Date(t + SESSION_TTL_MS).toISOString(),
    };
    this.byHash.set(session.id_sha256, session);
    this.save();
    return { id, session };
  }

  end(s: Session): void {
    if (this.byHash.delete(s.id_sha256)) this.save();
  }
}
