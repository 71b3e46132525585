import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createSecureContext, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import { TslxcError, errorText, type ErrorKind } from '../errors.js';
import { ensureClientCertificate, type ClientCertificate } from './certificate.js';
import { clientDir, loadClientConfig, readServerCert, sessionFile } from './config.js';
import { mkdirp } from '../util/fs.js';

/**
 * One API server (tslxc serve, or LXD) as the CLI talks to it: HTTPS with TLS 1.3, this user's
 * client certificate, and the server's certificate pinned (the only one accepted, whatever the
 * name or address); LXD's envelope (sync, async with an operation, error), operations waited on
 * with /wait, and an operation's websockets (exec). Failures are one line that names the remote.
 *
 * A TLS session of the server's is kept for the next command (sessions/NAME.json, 0600 in the
 * client's 0700 directory, as client.key is): its first connection resumes it, which spares both
 * sides the certificates' signatures and checks of a full handshake. It is taken only for the
 * address and pinned certificate it was made with; a server that no longer knows it (restarted,
 * or the ticket's lifetime is over) just makes a full handshake.
 */

/** LXD's api.Operation, as the client reads it. */
export interface RemoteOperation {
  id: string;
  class: string;
  status: string;
  status_code: number;
  metadata: Record<string, unknown> | null;
  err: string;
}

export interface Envelope {
  type: 'sync' | 'async' | 'error';
  status_code?: number;
  error_code?: number;
  error?: string;
  operation?: string;
  metadata?: unknown;
}

export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const KIND: Record<number, ErrorKind> = { 400: 'invalid', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 412: 'conflict' };

/** The DER bytes of a PEM certificate (its first), as a TLS peer presents them. */
function derOf(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/.exec(pem);
  return Buffer.from(m ? m[1]!.replace(/\s+/g, '') : '', 'base64');
}

/** TLS options that accept exactly the certificate PEM and present the client's. */
export function pinnedTls(serverPem: string, client: ClientCertificate): ConnectionOptions {
  const want = derOf(serverPem);
  return {
    // One context for every connection (the API call and each exec stream): making one per
    // connection parses the keys again each time.
    secureContext: createSecureContext({ ca: [serverPem], cert: client.cert, key: client.key, minVersion: 'TLSv1.3' }),
    minVersion: 'TLSv1.3',
    // The pin is the certificate itself: the name or address it was reached by does not matter.
    // Its bytes, compared as they are: no parse of either certificate.
    checkServerIdentity: (_host: string, peer: PeerCertificate) =>
      want.length && peer.raw?.equals(want) ? undefined : new Error('the server certificate is not the pinned one'),
  };
}

/** Where a remote's TLS session is kept, and what it holds to be taken again. */

interface SavedSession {
  /** sha256 of the address and the pinned certificate the session was made with */
  key: string;
  /** the session (node's TLSSocket 'session'), base64 */
  session: string;
}

export class RemoteServer {
  private readonly agent: https.Agent;
  private readonly base: URL;
  /** A session of an earlier command, for the first connection. */
  private resume?: Buffer;
  private sessionSaved = false;

  constructor(
    readonly name: string,
    addr: string,
    readonly tls: ConnectionOptions,
    /** where to keep a TLS session for the next command, and what it must match */
    private readonly sessions?: { file: string; key: string },
  ) {
    this.base = new URL(addr);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 8, ...tls });
    if (sessions) this.resume = readSession(sessions.file, sessions.key);
  }

  /** The remote NAME of this client's config, with its pinned certificate and the client's. */
  static open(name: string, dir = clientDir()): RemoteServer {
    const remote = loadClientConfig(dir).remotes[name];
    if (!remote) throw new TslxcError(`Remote "${name}" not found`, undefined, 'see "tslxc remote list"', { kind: 'not-found' });
    const pem = readServerCert(name, dir);
    const key = createHash('sha256').update(`${remote.addr}\n${pem}`).digest('hex');
    return new RemoteServer(name, remote.addr, pinnedTls(pem, ensureClientCertificate(dir)), { file: sessionFile(dir, name), key });
  }

  get address(): string {
    return this.base.origin;
  }

  /** One HTTP request; the reply as a stream (files, exports). */
  stream(method: string, path: string, body?: Buffer | Readable, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          protocol: 'https:',
          host: this.base.hostname.replace(/^\[|\]$/g, ''),
          port: this.base.port || 8443,
          method,
          path,
          agent: this.agent,
          ...this.takeSession(),
          headers: {
            ...(Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {}),
            ...(Buffer.isBuffer(body) && !headers['content-type'] ? { 'content-type': 'application/json' } : {}),
            'user-agent': 'tslxc',
            ...headers,
          },
        },
        resolve,
      );
      req.on('socket', (socket) => this.keepSession(socket as TLSSocket));
      req.on('error', (err) => reject(this.unreachable(err)));
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }

  /** One HTTP request, the whole reply read. */
  async raw(method: string, path: string, body?: Buffer | Readable, headers: Record<string, string> = {}): Promise<RawReply> {
    const res = await this.stream(method, path, body, headers);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
  }

  /** A request in LXD's envelope; an error envelope (or a non-JSON reply) is thrown as one line. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ envelope: Envelope; headers: IncomingHttpHeaders }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const r = await this.raw(method, path, data, headers);
    let envelope: Envelope;
    try {
      envelope = JSON.parse(r.body.toString('utf8')) as Envelope;
    } catch {
      throw new TslxcError(`Remote "${this.name}" gave no API answer to ${method} ${path}`, `HTTP ${r.status}`, 'is it a tslxc or LXD server?');
    }
    if (envelope.type === 'error' || r.status >= 400) throw this.failure(r.status, envelope.error || `HTTP ${r.status}`);
    return { envelope, headers: r.headers };
  }

  /** GET (or another call) whose answer is the metadata of a sync reply. */
  async get<T = unknown>(path: string): Promise<T> {
    return (await this.call('GET', path)).envelope.metadata as T;
  }

  /**
   * A call that may start an operation: a sync answer's metadata, or the finished operation's
   * (a failed operation is thrown).
   */
  async run<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const { envelope } = await this.call(method, path, body, headers);
    if (envelope.type !== 'async') return envelope.metadata as T;
    const op = await this.wait(operationId(envelope));
    return (op.metadata ?? {}) as T;
  }

  /** Waits for an operation to end; a failure or cancellation is thrown. */
  async wait(id: string): Promise<RemoteOperation> {
    for (;;) {
      const op = (await this.call('GET', `/1.0/operations/${encodeURIComponent(id)}/wait?timeout=30`)).envelope.metadata as RemoteOperation;
      if (op.status_code >= 200) {
        if (op.status_code !== 200 || op.err) throw this.failure(0, op.err || op.status);
        return op;
      }
    }
  }

  /**
   * An operation's websocket (GET /1.0/operations/ID/websocket?secret=S), paused: the server may
   * start the command, and send its output, as soon as the last stream connects, before the
   * caller has its listeners on the others. Resume it once they are there.
   */
  async websocket(id: string, secret: string): Promise<WebSocket> {
    // ws's optional native addons are not dependencies: looking for them walks every node_modules
    // above, on each command that opens a websocket.
    process.env.WS_NO_BUFFER_UTIL ??= '1';
    process.env.WS_NO_UTF_8_VALIDATE ??= '1';
    const { WebSocket } = await import('ws');
    const url = `wss://${this.base.host}/1.0/operations/${encodeURIComponent(id)}/websocket?secret=${encodeURIComponent(secret)}`;
    // Through the agent: a keep-alive connection of the API calls is taken over, and a new one
    // resumes a session of theirs.
    const ws = new WebSocket(url, {
      ...this.tls,
      ...this.takeSession(),
      agent: this.agent,
      perMessageDeflate: false,
      headers: { 'user-agent': 'tslxc' },
    } as object);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        ws.pause();
        resolve();
      });
      ws.once('error', (err) => reject(this.unreachable(err)));
    });
    return ws;
  }

  close(): void {
    this.agent.destroy();
  }

  /** The saved session, for the first connection only: the agent has the newer ones after. */
  private takeSession(): { session?: Buffer } {
    const session = this.resume;
    this.resume = undefined;
    return session ? { session } : {};
  }

  /** Keeps the first session the server gives this command (a full handshake's, or the resumed one's renewal). */
  private keepSession(socket: TLSSocket): void {
    if (!this.sessions || this.sessionSaved) return;
    socket.once('session', (session: Buffer) => {
      if (this.sessionSaved) return;
      this.sessionSaved = true;
      const { file, key } = this.sessions!;
      // Whole or not at all, as another command may read it meanwhile; not synced: a cache.
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        mkdirp(path.dirname(file), 0o700);
        fs.writeFileSync(tmp, JSON.stringify({ key, session: session.toString('base64') } satisfies SavedSession), { mode: 0o600 });
        fs.renameSync(tmp, file);
      } catch {
        fs.rmSync(tmp, { force: true });
        // Only a cache: the next command makes a full handshake.
      }
    });
  }

  failure(status: number, message: string): TslxcError {
    return new TslxcError(`Remote "${this.name}"`, message, undefined, { kind: KIND[status] });
  }

  private unreachable(err: unknown): TslxcError {
    const text = errorText(err);
    if (/pinned|self.signed|certificate/i.test(text))
      return new TslxcError(
        `Remote "${this.name}" (${this.address}) is not the server that was added`,
        text,
        'if its certificate changed on purpose, add it again',
      );
    return new TslxcError(`Cannot reach remote "${this.name}" (${this.address})`, text, 'is the server running and listening there?');
  }
}

function readSession(file: string, key: string): Buffer | undefined {
  try {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<SavedSession>;
    return saved.key === key && typeof saved.session === 'string' ? Buffer.from(saved.session, 'base64') : undefined;
  } catch {
    return undefined;
  }
}

export function operationId(envelope: Envelope): string {
  const op = envelope.operation ?? '';
  const id = op.split('/').pop() || (envelope.metadata as { id?: string } | undefined)?.id;
  if (!id) throw new TslxcError('The server started an operation without naming it');
  return id;
}
