import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The floor of `lxc exec C -- true` for any server: a stub on a unix socket that does only what
 * the `lxc` 5.0 client needs to run an exec, and runs nothing. It answers GET /1.0 with a recorded
 * answer (tslxc serve's), keeps the events websocket, makes the exec operation, and ends it
 * (return 0) as soon as the client has connected the data streams. Timed beside the real servers
 * (bench/apilist.ts --exec), what is left above it is the server's own work.
 */

interface StubOp {
  id: string;
  secrets: Map<string, string>;
  sockets: Map<string, WebSocket>;
  op: Record<string, unknown>;
}

export interface ExecStub {
  close(): Promise<void>;
}

export async function startExecStub(socketPath: string, serverInfo: unknown): Promise<ExecStub> {
  const ops = new Map<string, StubOp>();
  const listeners = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const reply = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const event = (op: Record<string, unknown>) => {
    const text = JSON.stringify({ type: 'operation', timestamp: new Date().toISOString(), metadata: op, location: 'none', project: 'default' });
    for (const ws of listeners) ws.send(text);
  };
  const finish = (o: StubOp) => {
    const t = new Date().toISOString();
    o.op = { ...o.op, status: 'Success', status_code: 200, updated_at: t, metadata: { ...(o.op.metadata as object), return: 0 } };
    event(o.op);
    for (const ws of o.sockets.values()) ws.close(1000);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    if (req.method === 'GET' && url.pathname === '/1.0')
      return reply(res, 200, { type: 'sync', status: 'Success', status_code: 200, operation: '', error_code: 0, error: '', metadata: serverInfo });
    const exec = /^\/1\.0\/(?:instances|containers)\/([^/]+)\/exec$/.exec(url.pathname);
    if (req.method === 'POST' && exec) {
      const t = new Date().toISOString();
      const secrets = new Map(['0', '1', '2', 'control'].map((n) => [n, randomBytes(32).toString('hex')]));
      const id = randomUUID();
      const op = {
        id,
        class: 'websocket',
        description: 'Executing command',
        created_at: t,
        updated_at: t,
        status: 'Running',
        status_code: 103,
        resources: { instances: [`/1.0/instances/${exec[1]}`] },
        metadata: { fds: Object.fromEntries(secrets) },
        may_cancel: false,
        err: '',
        location: 'none',
      };
      ops.set(id, { id, secrets: new Map([...secrets].map(([n, s]) => [s, n])), sockets: new Map(), op });
      event(op);
      res.setHeader('Location', `/1.0/operations/${id}`);
      return reply(res, 202, {
        type: 'async',
        status: 'Operation created',
        status_code: 100,
        operation: `/1.0/operations/${id}`,
        error_code: 0,
        error: '',
        metadata: op,
      });
    }
    const get = /^\/1\.0\/operations\/([^/]+)(\/wait)?$/.exec(url.pathname);
    if (req.method === 'GET' && get && ops.has(get[1]!))
      return reply(res, 200, { type: 'sync', status: 'Success', status_code: 200, operation: '', error_code: 0, error: '', metadata: ops.get(get[1]!)!.op });
    reply(res, 404, { type: 'error', error: 'not found', error_code: 404 });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/1.0/events') {
      wss.handleUpgrade(req, socket, head, (ws) => {
        listeners.add(ws);
        ws.on('close', () => listeners.delete(ws));
      });
      return;
    }
    const m = /^\/1\.0\/operations\/([^/]+)\/websocket$/.exec(url.pathname);
    const o = m ? ops.get(m[1]!) : undefined;
    const name = o?.secrets.get(url.searchParams.get('secret') ?? '');
    if (!o || !name) return socket.destroy();
    o.secrets.delete(url.searchParams.get('secret')!);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      o.sockets.set(name, ws);
      if (['0', '1', '2'].every((n) => o.sockets.has(n))) finish(o);
    });
  });
  fs.rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of listeners) ws.terminate();
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(socketPath, { force: true });
      }),
  };
}
