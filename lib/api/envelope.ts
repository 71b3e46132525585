import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { TslxcError, errorText } from '../errors.js';
import { ApiError, type ApiResult, type Operation } from './types.js';

/**
 * LXD 1.0's response envelope (sync, async, error) and the mapping of a thrown error to its HTTP
 * status: TslxcError's kind, ApiError's status, anything else 500 with its message.
 */

const KIND_STATUS = { 'not-found': 404, conflict: 409, invalid: 400, forbidden: 403 } as const;

const STATUS_TEXT: Record<number, string> = { 200: 'Success', 201: 'Created', 100: 'Operation created' };

export function errorStatus(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (err instanceof TslxcError && err.kind) return KIND_STATUS[err.kind];
  return 500;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, status, { type: 'error', status: '', status_code: 0, operation: '', error_code: status, error: message, metadata: null }, headers);
}

export function sendThrown(res: ServerResponse, err: unknown): number {
  const status = errorStatus(err);
  sendError(res, status, errorText(err) || 'internal error');
  return status;
}

export const operationUrl = (op: Operation) => `/1.0/operations/${op.id}`;

/** Writes a route's result; returns the HTTP status sent. */
export function sendResult(res: ServerResponse, result: ApiResult): number {
  switch (result.type) {
    case 'sync': {
      const status = result.status ?? 200;
      const headers: Record<string, string> = {};
      if (result.etag !== undefined) headers.ETag = result.etag.startsWith('"') ? result.etag : `"${result.etag}"`;
      if (result.location) headers.Location = result.location;
      send(
        res,
        status,
        {
          type: 'sync',
          status: STATUS_TEXT[status] ?? 'Success',
          status_code: status,
          operation: '',
          error_code: 0,
          error: '',
          metadata: result.metadata ?? null,
        },
        headers,
      );
      return status;
    }
    case 'async': {
      const url = operationUrl(result.operation);
      send(
        res,
        202,
        { type: 'async', status: 'Operation created', status_code: 100, operation: url, error_code: 0, error: '', metadata: result.operation },
        { Location: url },
      );
      return 202;
    }
    case 'raw': {
      const status = result.status ?? 200;
      if (Buffer.isBuffer(result.body)) {
        res.writeHead(status, { 'Content-Length': result.body.length, ...result.headers });
        res.end(result.body);
      } else {
        res.writeHead(status, result.headers ?? {});
        pipeline(result.body, res, () => {});
      }
      return status;
    }
  }
}
