import { Events } from '../events.js';
import type { ServerCore } from './core.js';
import { ApiError, sync, type Operation, type Route } from '../types.js';

/** /1.0/operations: list, get, wait, cancel; the websocket endpoints answer plain GETs with 400. */
export function operationRoutes(core: ServerCore): Route[] {
  const { operations } = core;
  return [
    {
      method: 'GET',
      path: '/1.0/operations',
      handler: async (req) => {
        const recursion = Number(req.query.get('recursion') ?? 0) > 0;
        const byStatus: Record<string, Array<Operation | string>> = {};
        for (const op of operations.list(req.identity)) (byStatus[op.status.toLowerCase()] ??= []).push(recursion ? op : `/1.0/operations/${op.id}`);
        return sync(byStatus);
      },
    },
    { method: 'GET', path: '/1.0/operations/{id}', handler: async (req) => sync(operations.get(req.params.id!, req.identity)) },
    {
      method: 'DELETE',
      path: '/1.0/operations/{id}',
      handler: async (req) => {
        operations.cancel(req.params.id!, req.identity);
        return sync({});
      },
    },
    {
      method: 'GET',
      path: '/1.0/operations/{id}/wait',
      handler: async (req) => {
        const t = req.query.get('timeout');
        const seconds = t === null || t === '' ? -1 : Number(t);
        if (!Number.isFinite(seconds)) throw new ApiError(400, `Invalid timeout "${t}"`);
        // A client that goes away stops the wait.
        const gone = new AbortController();
        const abort = () => gone.abort();
        req.raw.socket.once('close', abort);
        try {
          return sync(await operations.wait(req.params.id!, req.identity, seconds < 0 ? -1 : seconds * 1000, gone.signal));
        } finally {
          req.raw.socket.off('close', abort);
        }
      },
    },
    {
      method: 'GET',
      path: '/1.0/operations/{id}/websocket',
      handler: async () => {
        throw new ApiError(400, 'This endpoint is a websocket: connect with an Upgrade request and the secret');
      },
    },
    {
      method: 'GET',
      path: '/1.0/events',
      handler: async (req) => {
        if (!Events.parseTypes(req.query.get('type'))) throw new ApiError(400, `Unknown event type in "${req.query.get('type')}"`);
        throw new ApiError(400, 'This endpoint is a websocket: connect with an Upgrade request');
      },
    },
  ];
}
