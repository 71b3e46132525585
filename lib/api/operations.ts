import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { WebSocket } from 'ws';
import { errorText } from '../errors.js';
import { ApiError, type Identity, type Operation, type OperationSpec, type OperationStarter, type RunningOperation } from './types.js';
import { allowsInstance } from './access.js';

/**
 * The server's operations (LXD's /1.0/operations): each runs its spec's work once, websocket ones
 * once their required streams connected. Finished ones stay listed for a while, since pylxd polls
 * every half second and the `lxc` client GETs an operation once after its events say it ended.
 */

const STATUS = {
  running: ['Running', 103],
  cancelling: ['Cancelling', 104],
  success: ['Success', 200],
  failure: ['Failure', 400],
  cancelled: ['Cancelled', 401],
} as const;
type State = keyof typeof STATUS;

export interface OperationsOptions {
  /** How long a finished operation stays listed. */
  keepMs?: number;
  /** How long a websocket operation waits for its required streams before it fails. */
  connectTimeoutMs?: number;
  /** Called on every change of an operation (the events stream). */
  changed?: (op: Operation) => void;
}

interface Record_ {
  op: Operation;
  spec: OperationSpec;
  /** unused secrets, by stream name */
  secrets: Map<string, Buffer>;
  sockets: Map<string, WebSocket>;
  socketListeners: Array<(name: string, ws: WebSocket) => void>;
  started: boolean;
  controller: AbortController;
  done: Promise<void>;
  finish: () => void;
  connectTimer?: NodeJS.Timeout;
}

const now = () => new Date().toISOString();

/** What an ended operation keeps of its spec: nothing that runs or holds the request. */
const ENDED: OperationSpec = { class: 'task', description: '', run: async () => {} };

export class Operations implements OperationStarter {
  private readonly ops = new Map<string, Record_>();
  private readonly keepMs: number;
  private readonly connectTimeoutMs: number;

  constructor(private readonly opts: OperationsOptions = {}) {
    this.keepMs = opts.keepMs ?? 60_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
  }

  start(spec: OperationSpec): Operation {
    const id = randomUUID();
    const t = now();
    const secrets = new Map<string, Buffer>();
    const metadata: Record<string, unknown> = { ...spec.metadata };
    if (spec.sockets?.length) {
      const fds: Record<string, string> = {};
      // One draw from the CSPRNG for all the streams' secrets (an exec has four).
      const random = randomBytes(32 * spec.sockets.length);
      spec.sockets.forEach((name, i) => {
        const secret = random.toString('hex', 32 * i, 32 * (i + 1));
        fds[name] = secret;
        secrets.set(name, Buffer.from(secret));
      });
      metadata.fds = fds;
    }
    const op: Operation = {
      id,
      class: spec.class,
      description: spec.description,
      created_at: t,
      updated_at: t,
      status: STATUS.running[0],
      status_code: STATUS.running[1],
      resources: spec.resources ?? null,
      metadata: spec.sockets?.length || spec.metadata ? metadata : null,
      may_cancel: !!spec.cancel,
      err: '',
      location: 'none',
    };
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const rec: Record_ = { op, spec, secrets, sockets: new Map(), socketListeners: [], started: false, controller: new AbortController(), done, finish };
    this.ops.set(id, rec);
    this.changed(rec);
    if (this.ready(rec)) setImmediate(() => this.run(rec));
    else {
      rec.connectTimer = setTimeout(() => {
        if (!rec.started && !this.final(rec)) this.end(rec, 'failure', 'Timed out waiting for websockets to connect');
      }, this.connectTimeoutMs);
      rec.connectTimer.unref();
    }
    return this.snapshot(rec);
  }

  private required(rec: Record_): string[] {
    return rec.spec.required ?? rec.spec.sockets ?? [];
  }

  private ready(rec: Record_): boolean {
    return this.required(rec).every((n) => rec.sockets.has(n));
  }

  private final(rec: Record_): boolean {
    return rec.op.status_code >= 200;
  }

  private snapshot(rec: Record_): Operation {
    return { ...rec.op, metadata: rec.op.metadata && { ...rec.op.metadata } };
  }

  private changed(rec: Record_): void {
    rec.op.updated_at = now();
    this.opts.changed?.(this.snapshot(rec));
  }

  private run(rec: Record_): void {
    if (rec.started || this.final(rec)) return;
    rec.started = true;
    clearTimeout(rec.connectTimer);
    const running: RunningOperation = {
      id: rec.op.id,
      sockets: rec.sockets,
      onSocket: (fn) => rec.socketListeners.push(fn),
      update: (metadata) => {
        if (this.final(rec)) return;
        rec.op.metadata = { ...rec.op.metadata, ...metadata };
        this.changed(rec);
      },
      signal: rec.controller.signal,
    };
    // A run() that throws before its first await fails the operation like one that rejects.
    const work = (async () => rec.spec.run(running))();
    work.then(
      (result) => {
        if (result) rec.op.metadata = { ...rec.op.metadata, ...result };
        this.end(rec, rec.controller.signal.aborted ? 'cancelled' : 'success');
      },
      (err: unknown) => this.end(rec, rec.controller.signal.aborted ? 'cancelled' : 'failure', errorText(err) || 'operation failed'),
    );
  }

  private end(rec: Record_, state: State, err = ''): void {
    if (this.final(rec)) return;
    clearTimeout(rec.connectTimer);
    [rec.op.status, rec.op.status_code] = STATUS[state];
    rec.op.err = state === 'cancelled' ? err || 'Operation cancelled' : err;
    rec.op.may_cancel = false;
    rec.secrets.clear();
    this.changed(rec);
    // Streams the work left open: the operation is over, so they are too (their queued data is sent first).
    for (const ws of rec.sockets.values()) if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
    // A finished operation stays listed for keepMs, as its public shape alone: the work's closure
    // (the request, its arguments) and the streams would otherwise stay in memory as long.
    rec.sockets.clear();
    rec.socketListeners.length = 0;
    rec.spec = ENDED;
    rec.finish();
    setTimeout(() => this.ops.delete(rec.op.id), this.keepMs).unref();
  }

  /** Operations this identity may see: a restricted certificate, only those on its instances. */
  private visible(rec: Record_, identity: Identity): boolean {
    if (identity.instances === undefined) return true;
    const instances = rec.op.resources?.instances ?? rec.op.resources?.containers ?? [];
    return instances.length > 0 && instances.every((url) => allowsInstance(identity, decodeURIComponent(url.split('/')[3] ?? '').split('/')[0]!));
  }

  get(id: string, identity: Identity): Operation {
    const rec = this.ops.get(id);
    if (!rec || !this.visible(rec, identity)) throw new ApiError(404, 'Operation not found');
    return this.snapshot(rec);
  }

  list(identity: Identity): Operation[] {
    return [...this.ops.values()].filter((r) => this.visible(r, identity)).map((r) => this.snapshot(r));
  }

  /** Waits until the operation ends or `timeoutMs` passes (-1: no limit); then its state. */
  async wait(id: string, identity: Identity, timeoutMs: number, signal?: AbortSignal): Promise<Operation> {
    this.get(id, identity);
    const rec = this.ops.get(id)!;
    if (!this.final(rec)) {
      await new Promise<void>((resolve) => {
        const timer = timeoutMs >= 0 ? setTimeout(resolve, timeoutMs) : undefined;
        const stop = () => {
          clearTimeout(timer);
          resolve();
        };
        signal?.addEventListener('abort', stop, { once: true });
        void rec.done.then(stop);
      });
    }
    return this.snapshot(rec);
  }

  cancel(id: string, identity: Identity): void {
    this.get(id, identity);
    const rec = this.ops.get(id)!;
    if (this.final(rec)) throw new ApiError(400, 'Only running operations can be cancelled');
    const spec = rec.spec;
    if (!spec.cancel) throw new ApiError(400, "This operation can't be cancelled");
    if (!rec.started) {
      this.end(rec, 'cancelled');
      return;
    }
    if (rec.op.status_code !== STATUS.cancelling[1]) {
      [rec.op.status, rec.op.status_code] = STATUS.cancelling;
      this.changed(rec);
    }
    rec.controller.abort();
    spec.cancel();
  }

  /**
   * Which stream a websocket secret opens (used once), or undefined. The comparison is in
   * constant time: a secret is the only thing that authorizes the stream.
   */
  claimSocket(id: string, identity: Identity, secret: string): string | undefined {
    const rec = this.ops.get(id);
    if (!rec || this.final(rec) || !this.visible(rec, identity)) return undefined;
    const given = Buffer.from(secret);
    for (const [name, s] of rec.secrets) {
      if (s.length === given.length && timingSafeEqual(s, given)) {
        rec.secrets.delete(name);
        return name;
      }
    }
    return undefined;
  }

  /** A claimed stream connected. */
  attachSocket(id: string, name: string, ws: WebSocket): void {
    const rec = this.ops.get(id);
    if (!rec || this.final(rec)) {
      ws.close(1011, 'operation ended');
      return;
    }
    rec.sockets.set(name, ws);
    if (rec.started) for (const fn of rec.socketListeners) fn(name, ws);
    else if (this.ready(rec)) this.run(rec);
  }

  /** Operations running, waiting or kept after they ended: while there are any, the server is in use. */
  get count(): number {
    return this.ops.size;
  }

  /** At shutdown: every running operation's signal is aborted; waits a little for them to end. */
  async shutdown(graceMs: number): Promise<void> {
    const open = [...this.ops.values()].filter((r) => !this.final(r));
    for (const rec of open) {
      rec.controller.abort();
      if (!rec.started) this.end(rec, 'cancelled', 'The server is shutting down');
    }
    await Promise.race([Promise.all(open.map((r) => r.done)), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }
}
