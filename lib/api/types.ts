import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { Context } from '../state/context.js';

/**
 * The contract between the API server (lib/api/server.ts: sockets, TLS, trust, the envelope,
 * operations, events, the audit log) and the route modules (lib/api/routes/*.ts), which turn a
 * request into library calls and LXD-shaped objects (lib/api/shapes/*.ts). A route never writes
 * to the HTTP response itself: it returns an ApiResult, or throws (TslxcError's kind, or ApiError,
 * decides the status).
 */

/** Who is calling. The unix socket is always trusted; over HTTPS, a certificate in the trust store. */
export interface Identity {
  protocol: 'unix' | 'tls';
  /** The certificate's name in the trust store ("unix" on the socket); the audit log's "who". */
  name: string;
  fingerprint?: string;
  trusted: boolean;
  /**
   * A restricted caller sees and manages only instances whose names match one of these names or
   * globs (lib/api/access.ts allowsInstance; restrictionOf makes it from a trust entry).
   */
  instances?: string[];
  /** A `metrics` certificate may read GET /1.0/metrics and nothing else (absent: 'client'). */
  type?: 'client' | 'metrics';
  /** Set when the caller came through a dashboard session cookie rather than a certificate. */
  session?: string;
}

export interface ApiRequest {
  ctx: Context;
  method: string;
  /** The decoded path, without the query. */
  path: string;
  /** The route pattern's `{name}` parts, decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  identity: Identity;
  /** The JSON body, read within the server's limit (413 beyond it, 400 if malformed). */
  json<T = unknown>(): Promise<T>;
  /** The body as a stream, for uploads (files, image tarballs); the route bounds what it stores. */
  raw: IncomingMessage;
  operations: OperationStarter;
  events: EventSink;
}

export type ApiResult =
  | { type: 'sync'; metadata: unknown; status?: 200 | 201; etag?: string; location?: string }
  | { type: 'async'; operation: Operation }
  | { type: 'raw'; status?: number; headers?: Record<string, string>; body: Buffer | NodeJS.ReadableStream };

/** An operation's public shape (LXD's api.Operation). */
export interface Operation {
  id: string;
  class: 'task' | 'websocket' | 'token';
  description: string;
  created_at: string;
  updated_at: string;
  status: string;
  status_code: number;
  resources: Record<string, string[]> | null;
  metadata: Record<string, unknown> | null;
  may_cancel: boolean;
  err: string;
  location: string;
}

export interface OperationSpec {
  class: Operation['class'];
  description: string;
  /** e.g. { instances: ['/1.0/instances/c1'] } */
  resources?: Record<string, string[]>;
  metadata?: Record<string, unknown>;
  /**
   * A websocket operation's streams ('0', '1', '2', 'control'): each gets a one-time secret in
   * metadata.fds, for GET /1.0/operations/ID/websocket?secret=S.
   */
  sockets?: string[];
  /** The streams that must be connected before run() starts (default: all of `sockets`). */
  required?: string[];
  /** The work. What it returns is merged into the operation's metadata (exec: { return: N }). */
  run(op: RunningOperation): Promise<Record<string, unknown> | void>;
  /** Present when the operation may be cancelled (DELETE /1.0/operations/ID). */
  cancel?(): void;
}

export interface RunningOperation {
  id: string;
  /**
   * The connected websockets by stream name; later ones (an optional 'control') arrive as they
   * connect. Each comes paused, so frames a client sent early wait: resume it once its listeners
   * are in place.
   */
  sockets: Map<string, WebSocket>;
  /** Called when an optional stream connects after run() started. */
  onSocket(fn: (name: string, ws: WebSocket) => void): void;
  /** Replace parts of the operation's metadata (progress); sends an operation event. */
  update(metadata: Record<string, unknown>): void;
  /** Aborted when the operation is cancelled or the server shuts down. */
  signal: AbortSignal;
}

export interface OperationStarter {
  start(spec: OperationSpec): Operation;
}

/** LXD's lifecycle events (`instance-started`, `instance-created`, ...); operation events are the server's. */
export interface EventSink {
  lifecycle(action: string, source: string, context?: Record<string, unknown>): void;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Route {
  method: Method;
  /** '/1.0/instances/{name}/snapshots/{snapshot}' */
  path: string;
  /** Callable by an untrusted client (GET /1.0, POST /1.0/certificates with a token). */
  public?: boolean;
  handler(req: ApiRequest): Promise<ApiResult>;
}

/** A failure with an explicit HTTP status, for what TslxcError's kinds do not say. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const sync = (metadata: unknown, extra: Omit<Extract<ApiResult, { type: 'sync' }>, 'type' | 'metadata'> = {}): ApiResult => ({
  type: 'sync',
  metadata,
  ...extra,
});
