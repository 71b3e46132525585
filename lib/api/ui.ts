import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Throttle } from '../gateway/throttle.js';
import type { LabMemberCache } from '../lab/record.js';
import type { Paths } from '../state/paths.js';
import { sleep } from '../util/fs.js';
import { clearedCookie, csrfMatches, sameOrigin, scopeOf, sessionCookie, sessionIdentity, Sessions, type Session } from './session.js';
import type { Identity } from './types.js';

/**
 * The dashboard on the HTTPS listeners: the static bundle (dist/ui, built from ui/ by
 * scripts/bundle-ui.mjs) under /ui/, and the session endpoints the login page calls:
 * POST /ui/login {token}, POST /ui/logout, GET /ui/session. Everything else the page does goes
 * through the API as any client, with the session cookie as its credential.
 */

/** dist/lib/api/ and the bundles' dist/lib/full/ are both two levels below dist/. */
const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/**
 * Nothing from another site, no inline script. Inline styles stay allowed: xterm.js writes its
 * theme and cell metrics into <style> elements it creates, and style injection cannot run code.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  // The login link carries a token in its query: no page may see it in a Referer.
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-cache',
};

/** What the page asks for first (ui/app.ts, ui/pages/instances.ts LIST_URL): the longest first. */
const PRELOADS = ['/1.0/instances?recursion=1', '/ui/session', '/1.0'];

/** A login body is a token: small. */
const MAX_LOGIN_BYTES = 16 * 1024;

function readSmallJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      req.destroy();
      resolve(undefined);
    }, 10_000);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_LOGIN_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (size > MAX_LOGIN_BYTES) return resolve(undefined);
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        resolve(typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
  return status;
}

const sessionInfo = (s: Session) => ({
  name: s.name,
  restricted: s.restricted,
  scope: scopeOf(s),
  csrf: s.csrf,
  expires_at: s.expires_at,
});

/** How often a session's open websockets are checked against the trust store. */
const WATCH_MS = 2000;
/** The close code of a session's websocket when the session ended (RFC 6455: policy violation). */
const SESSION_ENDED = 1008;

export class Dashboard {
  readonly sessions: Sessions;
  private readonly files = new Map<string, Buffer>();
  private readonly watched = new Map<WebSocket, string>();
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(
    paths: Paths,
    private readonly throttle: Throttle,
    private readonly members: LabMemberCache,
  ) {
    this.sessions = new Sessions(paths);
  }

  /** The session identity of a request without a trusted certificate, if its cookie names one. */
  identify(req: IncomingMessage): Identity | undefined {
    const s = this.sessions.lookup(req.headers.cookie);
    return s ? sessionIdentity(s, this.members) : undefined;
  }

  /**
   * Why a session's request is refused, or undefined. Reads are free; a change (any method but
   * GET and HEAD) needs the dashboard's origin and the session's CSRF value.
   */
  refusal(identity: Identity, req: IncomingMessage): string | undefined {
    if (!identity.session) return undefined;
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') return undefined;
    const s = this.sessions.lookup(req.headers.cookie);
    if (!s || !sameOrigin(req.headers) || !csrfMatches(s, req.headers))
      return 'A dashboard session changes things only from the dashboard (origin and CSRF header)';
    return undefined;
  }

  /**
   * A session's websocket (events, a terminal) ends with its session: checked every few seconds
   * while any is open, since a websocket makes no further request that would find the session gone.
   */
  watch(identity: Identity, ws: WebSocket): void {
    if (!identity.session) return;
    this.watched.set(ws, identity.session);
    ws.once('close', () => this.watched.delete(ws));
    this.watchTimer ??= setInterval(() => {
      for (const [w, ref] of this.watched) if (!this.sessions.isLive(ref)) w.close(SESSION_ENDED, 'session ended');
      if (!this.watched.size) {
        clearInterval(this.watchTimer);
        this.watchTimer = undefined;
      }
    }, WATCH_MS).unref();
  }

  /** A websocket opened with a session cookie (events, exec) must come from the dashboard's page. */
  upgradeRefusal(identity: Identity, req: IncomingMessage): string | undefined {
    return identity.session && !sameOrigin(req.headers) ? 'A dashboard session opens websockets only from the dashboard' : undefined;
  }

  /** Serves /ui and /ui/...; returns the HTTP status and, for the audit log, who asked what. */
  async handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<{ status: number; who?: string }> {
    const method = req.method ?? 'GET';
    if (pathname === '/ui') {
      res.writeHead(308, { ...SECURITY_HEADERS, Location: '/ui/' });
      res.end();
      return { status: 308 };
    }
    if (pathname === '/ui/login') {
      if (method !== 'POST') return { status: json(res, 405, { error: 'method not allowed' }, { Allow: 'POST' }) };
      return this.login(req, res);
    }
    if (pathname === '/ui/logout') {
      if (method !== 'POST') return { status: json(res, 405, { error: 'method not allowed' }, { Allow: 'POST' }) };
      const s = this.sessions.lookup(req.headers.cookie);
      if (s && (!sameOrigin(req.headers) || !csrfMatches(s, req.headers))) return { status: json(res, 403, { error: 'Logout only from the dashboard' }) };
      if (s) await this.sessions.end(s);
      return { status: json(res, 200, {}, { 'Set-Cookie': clearedCookie }), who: s?.name };
    }
    if (pathname === '/ui/session') {
      const s = this.sessions.lookup(req.headers.cookie);
      // No session is an answer, not an error: the page asks before showing its login form.
      return { status: json(res, 200, s ? sessionInfo(s) : { session: null }) };
    }
    if (method !== 'GET' && method !== 'HEAD') return { status: json(res, 405, { error: 'method not allowed' }, { Allow: 'GET' }) };
    if (pathname === '/ui/') return { status: this.file(res, 'index.html', method === 'HEAD', this.preloads(req)) };
    return { status: this.file(res, pathname.slice('/ui/'.length), method === 'HEAD') };
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<{ status: number; who?: string }> {
    const address = req.socket.remoteAddress ?? 'unknown';
    if (!sameOrigin(req.headers)) return { status: json(res, 403, { error: 'Log in from the dashboard page' }) };
    if (this.throttle.bannedFor(address) > 0) return { status: json(res, 403, { error: 'Too many failed attempts from this address; try again later' }) };
    const body = await readSmallJson(req);
    const token = typeof body?.token === 'string' ? body.token.trim() : '';
    const made = token ? await this.sessions.redeem(token) : undefined;
    if (!made) {
      const t = this.throttle.failure(address);
      if (t.delayMs) await sleep(t.delayMs);
      return {
        status: json(res, 403, {
          error: 'This token is not valid: it was used already, expired, or mistyped. Ask for a new one ("tslxc config trust add" or "tslxc lab token").',
        }),
      };
    }
    this.throttle.success(address);
    return { status: json(res, 200, sessionInfo(made.session), { 'Set-Cookie': sessionCookie(made.id, made.session.expires_at) }), who: made.session.name };
  }

  /**
   * With a live session, the page's first requests start with its HTML instead of after its script
   * ran: the session, the server's description and the instances list (the default page's; the
   * page's fetch() of the same URL takes the preloaded answer).
   */
  private preloads(req: IncomingMessage): Record<string, string> {
    if (!this.sessions.lookup(req.headers.cookie)) return {};
    return { Link: PRELOADS.map((u) => `<${u}>; rel=preload; as=fetch; crossorigin=anonymous`).join(', ') };
  }

  private file(res: ServerResponse, rel: string, head: boolean, headers: Record<string, string> = {}): number {
    // Only the bundle's own flat file names: no traversal, no hidden files.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(rel) || !TYPES[path.extname(rel)]) return json(res, 404, { error: 'not found' });
    let data = this.files.get(rel);
    if (!data) {
      try {
        data = fs.readFileSync(path.join(UI_DIR, rel));
      } catch {
        return json(res, 404, { error: rel === 'index.html' ? 'The dashboard is not built (npm run build)' : 'not found' });
      }
      this.files.set(rel, data);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': TYPES[path.extname(rel)]!, 'Content-Length': String(data.length), ...headers });
    res.end(head ? undefined : data);
    return 200;
  }
}
