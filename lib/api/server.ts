import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { WebSocket, WebSocketServer } from 'ws';
import { TslxcError, errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { adoptLock, lockFile, tryLock, type Lock } from '../util/lock.js';
import { Throttle, DEFAULT_THROTTLE } from '../gateway/throttle.js';
import { AuditLog } from './audit.js';
import { ensureServerCertificate, fingerprintOf } from './certificate.js';
import type { ServerCore } from './core/core.js';
import { coreRoutes, CORE_EXTENSIONS } from './core/index.js';
import { sendError, sendResult, sendThrown } from './envelope.js';
import { Events } from './events.js';
import { Operations } from './operations.js';
import { Router } from './router.js';
import { routes as moduleRoutes, extensions as moduleExtensions, atStart, housekeeping, housekeepingWakeMs, HOUSEKEEPING_MS } from './routes/index.js';
import { addressesFile, TrustCache } from './trust.js';
import { restrictionOf } from './access.js';
import { LabMemberCache } from '../lab/record.js';
import { ApiError, type ApiRequest, type Identity } from './types.js';
import { Dashboard } from './ui.js';

/**
 * `tslxc serve`: LXD's REST API on a unix socket (always, TSLXC_DIR/unix.socket) and on HTTPS
 * addresses. The server holds no state of its own beyond operations and event listeners: the CLI
 * and the containers work beside it on the same state, and killing it stops nothing but requests.
 */

export const socketFile = (ctx: Context) => path.join(ctx.paths.stateDir, 'unix.socket');

/** JSON bodies beyond this are refused (413): objects and configs are small; uploads are streamed. */
export const MAX_JSON_BYTES = 1024 * 1024;
/** A websocket frame beyond this closes the socket (exec input comes in small frames). */
const MAX_WS_PAYLOAD = 8 * 1024 * 1024;
/** All a `metrics` certificate may read. */
const METRICS_PATH = '/1.0/metrics';

export interface ServeOptions {
  /** "ADDR:PORT" each (port 0: any) */
  listen?: string[];
  /** the unix socket's group (as `lxd --group`) */
  group?: string;
  info?: (line: string) => void;
  keepOperationsMs?: number;
  connectTimeoutMs?: number;
  /** The serve lock and the listening sockets (the unix one, then one per --listen) held by
   * serve's native front while no worker ran: used instead of taking and binding. */
  inherited?: { lock: number; listeners: number[] };
}

/** What serve's native front (lib/api/front.ts) takes over when the server retires. */
export interface Handover {
  lockFd: number;
  lockFile: string;
  socketFile: string;
  addressesFile: string;
  /** the unix socket's, then each --listen's */
  listenerFds: number[];
}

export interface RunningServer {
  socket: string;
  /** the HTTPS addresses actually bound ("ADDR:PORT") */
  addresses: string[];
  fingerprint: string;
  close(): Promise<void>;
  handover: Handover;
  /** How long nothing has been open or running (connections, operations, even kept ones, event
   * listeners, chores); 0 while something is. */
  idleMs(): number;
  /** Stops listening, leaving the sockets, their files and the lock to whoever holds copies (the
   * front); resolves when the last connection ended. Listening stops before it returns. */
  retire(): Promise<void>;
  /** Whether a client has connected since the server started. */
  used(): boolean;
  /** When a retired server should be started again for its housekeeping. */
  wakeMs(): Promise<number>;
}

function parseListen(spec: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(spec);
  if (!m || Number(m[2]) > 65535) throw new TslxcError(`Invalid --listen "${spec}"`, 'expected ADDRESS:PORT', 'e.g. --listen 0.0.0.0:8443');
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = fs
    .readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  if (!line) throw new TslxcError(`No group "${name}"`, 'it is not in /etc/group', 'create it ("groupadd") or give another --group');
  return Number(line.split(':')[2]);
}

/** What a wildcard address means for clients: every address of the host's interfaces. */
function clientAddresses(host: string, port: number): string[] {
  const fmt = (a: string) => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return [fmt(host)];
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) {
      if (a.internal || (host === '0.0.0.0' && a.family !== 'IPv4') || a.address.startsWith('fe80')) continue;
      out.push(fmt(a.address));
    }
  return out;
}

function listenOn(server: http.Server, where: string | { host: string; port: number } | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, done);
    else if ('fd' in where) server.listen({ fd: where.fd }, done);
    else server.listen(where.port, where.host, done);
  });
}

/**
 * Drops slow or silent clients: headers within 10 s (checked every second), a JSON body within
 * 15 s, nothing idle for 2 minutes. Uploads have no overall limit: they may be large.
 */
const CHECK_INTERVAL_MS = 1000;
const BODY_TIMEOUT_MS = 15_000;

function limitTimeouts(server: http.Server): void {
  server.headersTimeout = 10_000;
  server.requestTimeout = 0;
  server.timeout = 120_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
}

/** What a client still sending a body the server has answered may send, and for how long, before its connection is cut. */
const LINGER_BYTES = 8 * 1024 * 1024;
const LINGER_MS = 5_000;

/**
 * Called before an answer is written while the client is still sending its body (a 413, or a
 * refusal before an upload was read): the answer says `Connection: close`, and the rest of the
 * body is read and dropped, bounded in bytes and time, before the socket closes, as nginx's
 * lingering close does. Closing on unread data resets the connection, and a client still writing
 * would see EPIPE or ECONNRESET instead of the answer.
 */
function closeAfterBody(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete || res.headersSent) return;
  res.setHeader('Connection', 'close');
  const socket = req.socket;
  let dropped = 0;
  // The route's own readers are done with it: nothing may pause the rest of the body now.
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > LINGER_BYTES) socket.destroy();
  });
  req.resume();
  // Node closes a `Connection: close` socket once the answer is written (destroySoon): here only
  // the server's side is ended then, and the socket is closed when the body ends or a bound is hit.
  const closeNow = socket.destroySoon.bind(socket);
  socket.destroySoon = () => {
    if (req.complete) return closeNow();
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clearTimeout(timer));
    req.once('end', () => socket.destroy());
  };
}

function readJson(req: IncomingMessage): () => Promise<unknown> {
  let body: Promise<unknown> | undefined;
  return () =>
    (body ??= new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_JSON_BYTES) {
        req.resume();
        reject(new ApiError(413, `Request body too large (limit ${MAX_JSON_BYTES} bytes)`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const timer = setTimeout(() => {
        req.destroy();
        reject(new ApiError(408, 'Timed out reading the request body'));
      }, BODY_TIMEOUT_MS);
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_JSON_BYTES) {
          clearTimeout(timer);
          req.removeAllListeners('data');
          req.resume();
          reject(new ApiError(413, `Request body too large (limit ${MAX_JSON_BYTES} bytes)`));
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        clearTimeout(timer);
        if (size > MAX_JSON_BYTES) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (!text.trim()) {
          resolve({});
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new ApiError(400, `Invalid JSON body: ${(err as Error).message}`));
        }
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(new ApiError(400, `Cannot read the request body: ${err.message}`));
      });
    }));
}

export async function startServer(ctx: Context, opts: ServeOptions = {}): Promise<RunningServer> {
  const print = opts.info ?? (() => {});
  let logEvents: Events | undefined;
  // The server's own log lines also go to /1.0/events listeners of type logging, as LXD's do.
  const info = (line: string) => {
    print(line);
    logEvents?.logging('info', line);
  };
  const listens = (opts.listen ?? []).map(parseListen);
  const gid = opts.group !== undefined ? groupId(opts.group) : 0;
  fs.mkdirSync(ctx.paths.stateDir, { recursive: true, mode: 0o711 });
  // Held for the server's life; the kernel drops it when the process dies, SIGKILL included.
  const inherited = opts.inherited;
  const lock: Lock | undefined = inherited ? adoptLock(ctx.paths.stateDir, 'serve', inherited.lock) : tryLock(ctx.paths.stateDir, 'serve');
  if (!lock)
    throw new TslxcError(`Another tslxc serve is running on ${ctx.paths.stateDir}`, 'it holds serve.lock', 'stop it first, or point clients at its socket');
  const closers: Array<() => Promise<void> | void> = [() => lock.release()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const certificate = await ensureServerCertificate(ctx.paths);
    const events = new Events();
    logEvents = events;
    const operations = new Operations({ changed: (op) => events.operation(op), keepMs: opts.keepOperationsMs, connectTimeoutMs: opts.connectTimeoutMs });
    const core: ServerCore = {
      ctx,
      operations,
      events,
      certificate,
      addresses: [],
      extensions: [...new Set([...CORE_EXTENSIONS, ...moduleExtensions])],
      throttle: new Throttle({ ...DEFAULT_THROTTLE, delayAfter: 2, banAfter: 20 }),
    };
    // A route's stray promise or event handler must not take every session down with it: such a
    // failure is logged and the server goes on (each request's own errors are answered already).
    const stray = (err: unknown) => info(`internal error (the server goes on): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.on('unhandledRejection', stray);
    process.on('uncaughtException', stray);
    closers.push(() => {
      process.off('unhandledRejection', stray);
      process.off('uncaughtException', stray);
    });
    const pruner = setInterval(() => core.throttle.prune(), 60_000).unref();
    closers.push(() => clearInterval(pruner));
    // What keeps the server in use (idleMs): while any of these is open or running, it does not retire.
    let openConnections = 0;
    let connectionsSeen = 0;
    let choresRunning = 0;
    let quietSince = Date.now();
    const chore = (work: () => Promise<void>) => () => {
      choresRunning++;
      void work()
        .catch(stray)
        .finally(() => choresRunning--);
    };
    const chores = chore(() => housekeeping(ctx));
    const choresTimer = setInterval(chores, HOUSEKEEPING_MS).unref();
    closers.push(() => clearInterval(choresTimer));
    setImmediate(chores);
    setImmediate(chore(() => atStart(ctx)));
    const router = new Router([...coreRoutes(core), ...moduleRoutes]);
    const trust = new TrustCache(ctx.paths);
    const labMembers = new LabMemberCache(ctx.paths);
    const audit = new AuditLog(ctx.paths);
    // ws is loaded at the first websocket, not at start: it is a good part of an idle server's
    // memory, and a server that only answers `lxc list` or scripts never needs it.
    let wss: WebSocketServer | undefined;
    const websockets = async (): Promise<WebSocketServer> =>
      (wss ??= new (await import('ws')).WebSocketServer({ noServer: true, maxPayload: MAX_WS_PAYLOAD, perMessageDeflate: false }));

    const identifyCertificate = (req: IncomingMessage, protocol: 'unix' | 'tls'): Identity => {
      if (protocol === 'unix') return { protocol, name: 'unix', trusted: true };
      const peer = (req.socket as TLSSocket).getPeerCertificate?.(false);
      if (!peer?.raw) return { protocol, name: 'untrusted', trusted: false };
      const fingerprint = fingerprintOf(peer.raw);
      const c = trust.lookup(fingerprint);
      if (!c) return { protocol, name: 'untrusted', fingerprint, trusted: false };
      const instances = restrictionOf(c, labMembers);
      return { protocol, name: c.name, fingerprint, trusted: true, type: c.type, ...(instances ? { instances } : {}) };
    };

    // The dashboard (lib/api/ui.ts): /ui/ on the HTTPS listeners, and a browser without a trusted
    // certificate may act through a session cookie, with the restriction of the token that made it.
    const dashboard = new Dashboard(ctx.paths, core.throttle, labMembers);
    const identify = (req: IncomingMessage, protocol: 'unix' | 'tls'): Identity => {
      const id = identifyCertificate(req, protocol);
      return id.trusted || protocol !== 'tls' ? id : (dashboard.identify(req) ?? id);
    };

    const handle = async (req: IncomingMessage, res: ServerResponse, protocol: 'unix' | 'tls') => {
      const method = req.method ?? 'GET';
      let pathname = '/';
      let query = new URLSearchParams();
      let identity: Identity = { protocol, name: protocol === 'unix' ? 'unix' : 'untrusted', trusted: protocol === 'unix' };
      let status = 500;
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        pathname = url.pathname;
        query = url.searchParams;
        identity = identify(req, protocol);
        if (protocol === 'tls' && (pathname === '/ui' || pathname.startsWith('/ui/'))) {
          const r = await dashboard.handle(req, res, pathname);
          status = r.status;
          if (r.who) identity = { ...identity, name: r.who };
          return;
        }
        const refusal = dashboard.refusal(identity, req);
        if (refusal) {
          closeAfterBody(req, res);
          status = 403;
          sendError(res, 403, refusal);
          return;
        }
        const m = router.match(method, pathname);
        if ('status' in m) {
          closeAfterBody(req, res);
          status = m.status;
          sendError(res, m.status, m.status === 404 ? 'not found' : 'method not allowed', m.allowed ? { Allow: m.allowed.join(', ') } : {});
          return;
        }
        // A metrics certificate is trusted for the metrics alone: elsewhere it is a stranger, as in LXD.
        if (identity.type === 'metrics' && pathname !== METRICS_PATH) identity = { ...identity, trusted: false };
        if (!identity.trusted && !m.route.public) {
          closeAfterBody(req, res);
          status = 403;
          sendError(res, 403, identity.type === 'metrics' ? `not authorized: a metrics certificate may only read ${METRICS_PATH}` : 'not authorized');
          return;
        }
        const apiReq: ApiRequest = {
          ctx,
          method,
          path: decodeURIComponent(pathname),
          params: m.params,
          query,
          headers: req.headers,
          identity,
          json: readJson(req) as ApiRequest['json'],
          raw: req,
          operations,
          events: events.forRequest(identity, protocol === 'tls' ? `${req.socket.remoteAddress}:${req.socket.remotePort}` : undefined),
        };
        const result = await m.route.handler(apiReq);
        closeAfterBody(req, res);
        status = sendResult(res, result);
      } catch (err) {
        closeAfterBody(req, res);
        status = sendThrown(res, err);
        if (status >= 500) info(`${method} ${pathname}: ${errorText(err)}`);
      } finally {
        if (method !== 'GET' && method !== 'HEAD') audit.write(identity, method, pathname + (query.size ? `?${query}` : ''), status);
      }
    };

    const upgrade = async (req: IncomingMessage, socket: Socket, head: Buffer, protocol: 'unix' | 'tls') => {
      socket.setTimeout(0);
      socket.on('error', () => socket.destroy());
      const refuse = (status: number, message: string) => {
        const body = JSON.stringify({ type: 'error', error: message, error_code: status });
        socket.end(
          `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      };
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        const identity = identify(req, protocol);
        if (!identity.trusted || identity.type === 'metrics') return refuse(403, 'not authorized');
        const sessionRefusal = dashboard.upgradeRefusal(identity, req);
        if (sessionRefusal) return refuse(403, sessionRefusal);
        if (url.pathname === '/1.0/events') {
          const types = Events.parseTypes(url.searchParams.get('type'));
          if (!types) return refuse(400, `Unknown event type in "${url.searchParams.get('type')}"`);
          (await websockets()).handleUpgrade(req, socket, head, (ws) => {
            keepAlive(ws);
            events.add(ws, types, identity);
            dashboard.watch(identity, ws);
          });
          return;
        }
        const m = /^\/1\.0\/operations\/([^/]+)\/websocket$/.exec(url.pathname);
        if (m) {
          const id = decodeURIComponent(m[1]!);
          const stream = operations.claimSocket(id, identity, url.searchParams.get('secret') ?? '');
          if (!stream) return refuse(403, 'Invalid or used websocket secret');
          (await websockets()).handleUpgrade(req, socket, head, (ws) => {
            keepAlive(ws);
            // Frames a client sends before its operation runs wait for the route's listeners
            // (the route resumes the socket), instead of being emitted to no one.
            ws.pause();
            operations.attachSocket(id, stream, ws);
            dashboard.watch(identity, ws);
          });
          return;
        }
        refuse(404, 'not found');
      } catch (err) {
        refuse(400, errorText(err));
      }
    };

    /** A peer that vanished without closing (half-open) is found by pings and dropped. */
    const alive = new WeakSet<WebSocket>();
    const sockets = new Set<WebSocket>();
    const keepAlive = (ws: WebSocket) => {
      alive.add(ws);
      sockets.add(ws);
      ws.on('pong', () => alive.add(ws));
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => ws.terminate());
    };
    const pinger = setInterval(() => {
      for (const ws of sockets) {
        if (!alive.has(ws)) {
          ws.terminate();
          continue;
        }
        alive.delete(ws);
        ws.ping();
      }
    }, 30_000).unref();
    closers.push(() => clearInterval(pinger));

    const servers: http.Server[] = [];
    const serve = (s: http.Server, protocol: 'unix' | 'tls') => {
      limitTimeouts(s);
      s.on('connection', (socket: Socket) => {
        openConnections++;
        connectionsSeen++;
        socket.once('close', () => {
          openConnections--;
          quietSince = Date.now();
        });
      });
      s.on('request', (req: IncomingMessage, res: ServerResponse) => void handle(req, res, protocol));
      s.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void upgrade(req, socket, head, protocol));
      s.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        if (socket.writable) socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
        else socket.destroy();
      });
      servers.push(s);
    };

    // The unix socket. Holding the lock means no server owns the file there: it is a killed one's.
    const sock = socketFile(ctx);
    const unixServer = http.createServer({ connectionsCheckingInterval: CHECK_INTERVAL_MS });
    serve(unixServer, 'unix');
    if (inherited) await listenOn(unixServer, { fd: inherited.listeners[0]! });
    else {
      // Bound under a name of its own, then renamed into place: libuv removes the name a socket
      // was bound to when its server closes, and a retiring server must leave the front's socket
      // where clients find it. The rename also shows clients the socket only once its mode is set.
      const bound = `${sock}.${process.pid}`;
      fs.rmSync(bound, { force: true });
      const oldMask = process.umask(0o177);
      try {
        await listenOn(unixServer, bound);
      } finally {
        process.umask(oldMask);
      }
      fs.chownSync(bound, 0, gid);
      fs.chmodSync(bound, 0o660);
      fs.renameSync(bound, sock);
    }
    closers.push(() => fs.rmSync(sock, { force: true }));

    // HTTPS (and TLS with it) only when asked for: a unix-socket server does without.
    const https = listens.length ? (await import('node:https')).default : undefined;
    for (const [i, l] of listens.entries()) {
      const s = https!.createServer({
        cert: certificate.cert,
        key: certificate.key,
        minVersion: 'TLSv1.3',
        requestCert: true,
        rejectUnauthorized: false,
        connectionsCheckingInterval: CHECK_INTERVAL_MS,
      });
      serve(s, 'tls');
      s.on('tlsClientError', (_err, socket) => socket.destroy());
      try {
        await listenOn(s, inherited ? { fd: inherited.listeners[i + 1]! } : l);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new TslxcError(`Cannot listen on ${l.host}:${l.port}`, e.code === 'EADDRINUSE' ? 'the port is in use' : e.message, 'pick another --listen');
      }
      const port = (s.address() as { port: number }).port;
      core.addresses.push(...clientAddresses(l.host, port));
    }
    fs.writeFileSync(addressesFile(ctx.paths), `${JSON.stringify(core.addresses)}\n`);
    closers.push(() => fs.rmSync(addressesFile(ctx.paths), { force: true }));

    closers.push(async () => {
      await operations.shutdown(3000);
      events.close();
      for (const ws of sockets) ws.terminate();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    });
    info(`listening on ${sock}${core.addresses.length ? ` and https://${core.addresses.join(', https://')}` : ''}`);
    const handleFd = (s: http.Server) => (s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    // Quiet is counted from the last client's activity; a chore running only puts the retirement off.
    const idleMs = () => {
      if (openConnections > 0 || operations.count > 0 || events.count > 0) {
        quietSince = Date.now();
        return 0;
      }
      return choresRunning > 0 ? 0 : Date.now() - quietSince;
    };
    const retire = () => {
      const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      for (const stop of [() => clearInterval(pinger), () => clearInterval(choresTimer), () => clearInterval(pruner)]) stop();
      return Promise.all(closed).then(() => {});
    };
    return {
      socket: sock,
      addresses: core.addresses,
      fingerprint: certificate.fingerprint,
      close: closeAll,
      handover: {
        lockFd: lock.fd,
        lockFile: lockFile(ctx.paths.stateDir, 'serve'),
        socketFile: sock,
        addressesFile: addressesFile(ctx.paths),
        listenerFds: servers.map(handleFd),
      },
      idleMs,
      retire,
      used: () => connectionsSeen > 0,
      wakeMs: () => housekeepingWakeMs(ctx),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
