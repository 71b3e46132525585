/**
 * The API as the page uses it: LXD's envelope over fetch with the session cookie, the CSRF header
 * on changes, operations waited for, and the events websocket (reconnecting).
 */

let csrf = '';
export function setCsrf(value: string): void {
  csrf = value;
}

let sessionEnded: (() => void) | undefined;
/**
 * With a session: what to do once it ended elsewhere (removed from the trust store, logged out in
 * another tab, expired). A 403 or a closed events socket makes the page ask whether it still has one.
 */
export function onSessionEnd(fn: (() => void) | undefined): void {
  sessionEnded = fn;
  sessionGone = false;
}
/** the session ended: nothing reconnects until the next login */
let sessionGone = false;

let checking: Promise<void> | undefined;
function checkSession(): Promise<void> {
  if (!sessionEnded) return Promise.resolve();
  checking ??= fetch('/ui/session', { credentials: 'same-origin' })
    .then(async (r) => {
      const info = (await r.json()) as { csrf?: string };
      if (info.csrf) return;
      const fn = sessionEnded;
      sessionEnded = undefined;
      sessionGone = true;
      stopEvents();
      fn?.();
    })
    .catch(() => {})
    .finally(() => (checking = undefined));
  return checking;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Envelope {
  type: 'sync' | 'async' | 'error';
  error?: string;
  error_code?: number;
  operation?: string;
  metadata?: unknown;
}

async function call(method: string, path: string, body?: unknown): Promise<Envelope> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-Tslxc-CSRF'] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let env: Envelope | undefined;
  try {
    env = JSON.parse(text) as Envelope;
  } catch {
    env = undefined;
  }
  if (res.status === 403) void checkSession();
  if (!res.ok || !env || env.type === 'error') throw new ApiFailure(res.status, env?.error || `${res.status} ${res.statusText}`);
  return env;
}

/** A sync request's metadata. */
export async function get<T>(path: string): Promise<T> {
  return (await call('GET', path)).metadata as T;
}

export async function text(path: string): Promise<string> {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) throw new ApiFailure(res.status, `${res.status} ${res.statusText}`);
  return res.text();
}

export interface Operation {
  id: string;
  status: string;
  status_code: number;
  err: string;
  metadata: Record<string, unknown> | null;
}

/** A change: sync answers return their metadata, async ones are waited for (their error thrown). */
export async function change<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const env = await call(method, path, body);
  if (env.type !== 'async' || !env.operation) return env.metadata as T;
  const op = (await call('GET', `${env.operation}/wait?timeout=120`)).metadata as Operation;
  if (op.status_code >= 400 || op.err) throw new ApiFailure(400, op.err || op.status);
  return op as T;
}

/** Starts an operation without waiting (exec): its metadata (websocket secrets). */
export async function start(path: string, body: unknown): Promise<Operation> {
  const env = await call('POST', path, body);
  return env.metadata as Operation;
}

export interface LxdEvent {
  type: 'lifecycle' | 'operation' | 'logging';
  timestamp: string;
  metadata: Record<string, unknown>;
}

type Listener = (e: LxdEvent) => void;
const listeners = new Set<Listener>();
let socket: WebSocket | undefined;
let retry = 500;

function connect(): void {
  const ws = new WebSocket(`wss://${location.host}/1.0/events?type=lifecycle,operation`);
  socket = ws;
  ws.onopen = () => (retry = 500);
  ws.onmessage = (m) => {
    let e: LxdEvent;
    try {
      e = JSON.parse(String(m.data)) as LxdEvent;
    } catch {
      return;
    }
    for (const l of listeners) l(e);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = undefined;
    void checkSession().then(() => {
      if (socket || !listeners.size || sessionGone) return;
      window.setTimeout(() => {
        if (!socket && listeners.size && !sessionGone) connect();
      }, retry);
      retry = Math.min(retry * 2, 10_000);
    });
  };
}

/** Listens to /1.0/events (one socket for the page); returns the unsubscribe. */
export function onEvent(fn: Listener): () => void {
  listeners.add(fn);
  if (!socket && !sessionGone) connect();
  return () => listeners.delete(fn);
}

export function stopEvents(): void {
  const ws = socket;
  socket = undefined;
  ws?.close();
}

export const instanceUrl = (name: string) => `/1.0/instances/${encodeURIComponent(name)}`;
