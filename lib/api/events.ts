import type { WebSocket } from 'ws';
import { allowsInstance } from './access.js';
import type { EventSink, Identity, Operation } from './types.js';

/**
 * /1.0/events: every listener gets the events of the types it asked for (`?type=operation,
 * lifecycle,logging`; all of them by default). The `lxc` client opens one before each async
 * request and waits on it, so a slow listener must never hold up the others: a listener whose
 * socket buffers too much is dropped (it reconnects), as LXD drops one that does not read.
 */

export const EVENT_TYPES = ['operation', 'logging', 'lifecycle'] as const;
type EventType = (typeof EVENT_TYPES)[number];

interface Listener {
  ws: WebSocket;
  types: Set<EventType>;
  identity: Identity;
}

/** Bytes a listener may leave unread before it is dropped. */
const MAX_BUFFERED = 4 * 1024 * 1024;

const instanceOf = (url: string) => decodeURIComponent(url.split('/')[3] ?? '');

export class Events implements EventSink {
  private readonly listeners = new Set<Listener>();

  /** The types a `type` query asks for; undefined when it names an unknown one. */
  static parseTypes(query: string | null): Set<EventType> | undefined {
    if (!query) return new Set(EVENT_TYPES);
    const types = new Set<EventType>();
    for (const t of query.split(',').map((s) => s.trim())) {
      if (!t) continue;
      if (!(EVENT_TYPES as readonly string[]).includes(t)) return undefined;
      types.add(t as EventType);
    }
    return types.size ? types : new Set(EVENT_TYPES);
  }

  add(ws: WebSocket, types: Set<EventType>, identity: Identity): void {
    const l = { ws, types, identity };
    this.listeners.add(l);
    ws.on('close', () => this.listeners.delete(l));
    ws.on('error', () => this.listeners.delete(l));
    // Listeners only listen: anything they send is read and dropped.
    ws.on('message', () => {});
  }

  get count(): number {
    return this.listeners.size;
  }

  private send(type: EventType, metadata: unknown, visible: (identity: Identity) => boolean): void {
    if (!this.listeners.size) return;
    const text = JSON.stringify({ type, timestamp: new Date().toISOString(), metadata, location: 'none', project: 'default' });
    for (const l of this.listeners) {
      if (!l.types.has(type) || !visible(l.identity)) continue;
      if (l.ws.readyState !== l.ws.OPEN) continue;
      if (l.ws.bufferedAmount > MAX_BUFFERED) {
        l.ws.terminate();
        this.listeners.delete(l);
        continue;
      }
      l.ws.send(text);
    }
  }

  operation(op: Operation): void {
    const instances = op.resources?.instances ?? op.resources?.containers ?? [];
    this.send('operation', op, (id) => id.instances === undefined || (instances.length > 0 && instances.every((u) => allowsInstance(id, instanceOf(u)))));
  }

  lifecycle(action: string, source: string, context?: Record<string, unknown>): void {
    const name = source.startsWith('/1.0/instances/') ? instanceOf(source).split('/')[0]! : undefined;
    this.send('lifecycle', { action, source, context: context ?? {} }, (id) => id.instances === undefined || (name !== undefined && allowsInstance(id, name)));
  }

  logging(level: string, message: string, context: Record<string, string> = {}): void {
    // Log lines can name anything: only unrestricted callers get them.
    this.send('logging', { message, level, context }, (id) => id.instances === undefined);
  }

  close(): void {
    for (const l of this.listeners) l.ws.close(1001, 'server shutting down');
    this.listeners.clear();
  }
}
