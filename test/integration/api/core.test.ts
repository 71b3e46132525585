import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { WebSocket } from 'ws';
import { startServer, type RunningServer } from '../../../lib/api/server.js';
import { routes } from '../../../lib/api/routes/index.js';
import { ApiError, sync, type Route } from '../../../lib/api/types.js';
import { TslxcError } from '../../../lib/errors.js';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { run, type Json } from '../../helpers/api.js';

/**
 * The server in this process with stub routes (a task, an echoing websocket operation, errors of
 * each kind), driven over its unix socket by raw requests, websockets and the real `lxc` client.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apicore');
  let server: RunningServer;

  const stubs: Route[] = [
    {
      method: 'POST',
      path: '/1.0/test/task',
      handler: async (req) => {
        const body = await req.json<{ ms?: number; fail?: string }>();
        const op = req.operations.start({
          class: 'task',
          description: 'Test task',
          resources: { instances: ['/1.0/instances/c1'] },
          run: async (r) => {
            r.update({ progress: '50%' });
            await new Promise((resolve) => {
              const timer = setTimeout(resolve, body.ms ?? 50);
              r.signal.addEventListener('abort', () => {
                clearTimeout(timer);
                resolve(undefined);
              });
            });
            if (body.fail) throw new Error(body.fail);
            req.events.lifecycle('instance-started', '/1.0/instances/c1');
            return { done: true };
          },
          cancel: () => {},
        });
        return { type: 'async', operation: op };
      },
    },
    {
      method: 'POST',
      path: '/1.0/test/echo',
      handler: async (req) => {
        const op = req.operations.start({
          class: 'websocket',
          description: 'Echo',
          sockets: ['0', 'control'],
          required: ['0'],
          run: (r) =>
            new Promise((resolve) => {
              const ws = r.sockets.get('0')!;
              ws.on('message', (data, binary) => {
                if (!binary && data.toString() === '') resolve({ return: 7 });
                else ws.send(data, { binary: true });
              });
              ws.resume();
            }),
        });
        return { type: 'async', operation: op };
      },
    },
    {
      method: 'GET',
      path: '/1.0/test/fail/{kind}',
      handler: async (req) => {
        const kind = req.params.kind!;
        if (kind === 'api') throw new ApiError(418, 'teapot');
        if (kind === 'plain') throw new Error('boom');
        throw new TslxcError('No such thing', undefined, undefined, { kind: kind as 'not-found' });
      },
    },
    {
      method: 'PUT',
      path: '/1.0/test/json',
      handler: async (req) => sync(await req.json()),
    },
  ];

  test.serial.before(async () => {
    routes.push(...stubs);
    server = await startServer(env.ctx, { listen: ['127.0.0.1:0'], keepOperationsMs: 2000, connectTimeoutMs: 1500 });
  });
  test.serial.after.always(async () => {
    await server?.close();
    routes.splice(routes.length - stubs.length, stubs.length);
    await env.cleanup();
  });

  function request(
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: Json }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: server.socket, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: Json;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode!, headers: res.headers, json });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const wsUrl = (p: string) => `ws+unix://${server.socket}:${p}`;

  test.serial('GET /1.0 has the trusted form over the socket', async (t) => {
    const r = await request('GET', '/1.0');
    t.is(r.status, 200);
    t.is(r.json.type, 'sync');
    t.is(r.json.metadata.auth, 'trusted');
    t.is(r.json.metadata.api_version, '1.0');
    t.true(r.json.metadata.environment.storage.length > 0);
    t.is(r.json.metadata.environment.certificate_fingerprint, server.fingerprint);
    t.truthy(r.headers.etag);
  });

  test.serial('unknown paths and methods answer in the error envelope', async (t) => {
    const a = await request('GET', '/1.0/nothing');
    t.is(a.status, 404);
    t.like(a.json, { type: 'error', error_code: 404 });
    const b = await request('DELETE', '/1.0');
    t.is(b.status, 405);
    t.like(b.json, { type: 'error', error_code: 405 });
  });

  test.serial('errors map to statuses: kinds, ApiError, anything else 500', async (t) => {
    for (const [kind, status] of [
      ['not-found', 404],
      ['conflict', 409],
      ['invalid', 400],
      ['forbidden', 403],
      ['api', 418],
      ['plain', 500],
    ] as const) {
      const r = await request('GET', `/1.0/test/fail/${kind}`);
      t.is(r.status, status, kind);
      t.is(r.json.error_code, status);
      t.is(typeof r.json.error, 'string');
    }
  });

  test.serial('malformed JSON is 400, a body over 1 MiB is 413, the server stays up', async (t) => {
    t.is((await request('PUT', '/1.0/test/json', '{"a":')).status, 400);
    t.is((await request('PUT', '/1.0/test/json', Buffer.alloc(2 * 1024 * 1024, 0x20))).status, 413);
    const ok = await request('PUT', '/1.0/test/json', '{"a":1}');
    t.deepEqual(ok.json.metadata, { a: 1 });
  });

  test.serial('a stray rejection or exception in a route is logged; the server stays up', async (t) => {
    // In a process of its own: ava fails any test process that has an unhandled rejection.
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../lib');
    const state = path.join(env.root, 'stray');
    const script = `
      const { routes } = await import('${dist}/api/routes/index.js');
      const { startServer } = await import('${dist}/api/server.js');
      const { Context } = await import('${dist}/state/context.js');
      routes.push({ method: 'POST', path: '/1.0/test/stray', handler: async () => {
        void Promise.reject(new Error('stray rejection'));
        setTimeout(() => { throw new Error('stray exception'); }, 1);
        return { type: 'sync', metadata: {} };
      } });
      const s = await startServer(new Context({ ...${JSON.stringify(env.paths)}, stateDir: '${state}' }), { info: (l) => console.error(l) });
      const http = await import('node:http');
      const ask = (method, p) => new Promise((resolve) => http.request({ socketPath: s.socket, method, path: p }, (res) => { res.resume(); resolve(res.statusCode); }).end());
      const first = await ask('POST', '/1.0/test/stray');
      await new Promise((r) => setTimeout(r, 100));
      console.log(first, await ask('GET', '/1.0'));
      await s.close();
    `;
    const r = await run(process.execPath, ['--input-type=module', '-e', script]);
    t.is(r.stdout.trim(), '200 200', r.stderr);
    t.regex(r.stderr, /internal error \(the server goes on\): Error: stray rejection/);
    t.regex(r.stderr, /stray exception/);
  });

  test.serial('a task operation: 202 with Location, wait, events, listed after it ended', async (t) => {
    const events: Json[] = [];
    const ws = new WebSocket(wsUrl('/1.0/events?type=operation,lifecycle'));
    ws.on('message', (d) => events.push(JSON.parse(d.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
    const r = await request('POST', '/1.0/test/task', '{"ms":100}');
    t.is(r.status, 202);
    t.is(r.json.type, 'async');
    t.is(r.headers.location, r.json.operation);
    t.is(r.json.metadata.status_code, 103);
    const w = await request('GET', `${r.json.operation}/wait?timeout=10`);
    t.is(w.json.metadata.status, 'Success');
    t.is(w.json.metadata.status_code, 200);
    t.true(w.json.metadata.metadata.done);
    await new Promise((resolve) => setTimeout(resolve, 100));
    ws.close();
    const ops = events.filter((e) => e.type === 'operation' && e.metadata.id === r.json.metadata.id).map((e) => e.metadata.status_code);
    t.deepEqual([ops[0], ops[ops.length - 1]], [103, 200]);
    t.true(events.some((e) => e.type === 'lifecycle' && e.metadata.action === 'instance-started'));
    const list = await request('GET', '/1.0/operations?recursion=1');
    t.true(list.json.metadata.success.some((o: Json) => o.id === r.json.metadata.id));
  });

  test.serial('a failing task ends in Failure with its message; cancel ends in Cancelled', async (t) => {
    const f = await request('POST', '/1.0/test/task', '{"fail":"it broke"}');
    const w = await request('GET', `${f.json.operation}/wait`);
    t.like(w.json.metadata, { status: 'Failure', status_code: 400, err: 'it broke' });
    const c = await request('POST', '/1.0/test/task', '{"ms":5000}');
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.is((await request('DELETE', c.json.operation)).status, 200);
    const wc = await request('GET', `${c.json.operation}/wait?timeout=10`);
    t.is(wc.json.metadata.status_code, 401);
    t.is((await request('GET', '/1.0/operations/nope')).status, 404);
  });

  test.serial('a websocket operation runs once its required stream connects; secrets work once', async (t) => {
    const r = await request('POST', '/1.0/test/echo', '{}');
    const { fds } = r.json.metadata.metadata;
    const ws = new WebSocket(wsUrl(`${r.json.operation}/websocket?secret=${fds['0']}`));
    await new Promise((resolve) => ws.once('open', resolve));
    const again = new WebSocket(wsUrl(`${r.json.operation}/websocket?secret=${fds['0']}`));
    const refused = await new Promise<number>((resolve) => again.once('unexpected-response', (_req, res) => resolve(res.statusCode!)));
    t.is(refused, 403);
    const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.send(Buffer.from('hello'));
    t.is(await echoed, 'hello');
    ws.send('');
    const w = await request('GET', `${r.json.operation}/wait?timeout=10`);
    t.like(w.json.metadata, { status_code: 200 });
    t.is(w.json.metadata.metadata.return, 7);
  });

  test.serial('a websocket operation whose stream never connects times out', async (t) => {
    const r = await request('POST', '/1.0/test/echo', '{}');
    const w = await request('GET', `${r.json.operation}/wait?timeout=10`);
    t.like(w.json.metadata, { status_code: 400 });
    t.regex(w.json.metadata.err, /Timed out/);
  });

  test.serial('the lxc client: remote add over unix, info, operation list', async (t) => {
    const conf = `${env.root}/lxc-conf`;
    const lxcEnv = { ...process.env, LXD_CONF: conf, LXD_DIR: env.paths.stateDir, HOME: env.root };
    const add = await run('lxc', ['remote', 'add', 'loc', `unix://${server.socket}`], { env: lxcEnv });
    t.is(add.code, 0, add.stderr);
    const info = await run('lxc', ['info', 'loc:'], { env: lxcEnv });
    t.is(info.code, 0, info.stderr);
    t.regex(info.stdout, /auth: trusted/);
    const ops = await run('lxc', ['operation', 'list', 'loc:'], { env: lxcEnv });
    t.is(ops.code, 0, ops.stderr);
    t.regex(ops.stdout, /TYPE/);
  });
}
