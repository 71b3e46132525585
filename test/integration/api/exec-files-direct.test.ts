import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { WebSocket, WebSocketServer } from 'ws';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import * as execRoutes from '../../../lib/api/routes/exec.js';
import * as fileRoutes from '../../../lib/api/routes/files.js';
import type { ApiRequest, ApiResult, Identity, Operation, OperationSpec, Route, RunningOperation } from '../../../lib/api/types.js';

/**
 * The exec and file routes called directly, without the server: a request built by hand and an
 * operation runner of a few lines whose websockets are real ones over a unix socket. The real
 * clients (`lxc`, pylxd) over `tslxc serve` are in lxc-exec-files.test.ts.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apiexec');
  const unix: Identity = { protocol: 'unix', name: 'unix', trusted: true };
  let wss: WebSocketServer;
  let httpServer: http.Server;
  let sockPath: string;
  const pending = new Map<string, (ws: WebSocket) => void>();

  test.before(async () => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const n of ['x1', 'x2']) {
      const l = env.cli(['launch', 'busybox', n]);
      if (l.code !== 0) throw new Error(l.stderr);
    }
    sockPath = path.join(env.root, 'ws.sock');
    httpServer = http.createServer();
    wss = new WebSocketServer({ server: httpServer });
    await new Promise<void>((resolve) => httpServer.listen(sockPath, resolve));
    wss.on('connection', (ws, req) => {
      const secret = new URL(req.url!, 'http://x').searchParams.get('secret')!;
      pending.get(secret)?.(ws);
      pending.delete(secret);
    });
  });
  test.after.always(() => {
    wss?.close();
    httpServer?.close();
  });
  leftoverHooks(test, env);

  interface Started {
    op: Operation;
    /** Our (client) ends, by stream name. */
    client: Map<string, WebSocket>;
    done: Promise<Record<string, unknown> | void>;
  }

  /** The server's part: one-time secrets, the required streams, then run(). */
  function startOperation(spec: OperationSpec, connect: string[]): Started {
    const server = new Map<string, WebSocket>();
    const client = new Map<string, WebSocket>();
    const listeners: Array<(name: string, ws: WebSocket) => void> = [];
    const abort = new AbortController();
    const required = spec.required ?? spec.sockets ?? [];
    const fds: Record<string, string> = {};
    let started: () => void;
    const ready = new Promise<void>((r) => (started = r));
    for (const name of spec.sockets ?? []) {
      const secret = `${name}-${Math.random().toString(16).slice(2)}`;
      fds[name] = secret;
      pending.set(secret, (ws) => {
        ws.pause(); // as the server does: frames wait for run()
        server.set(name, ws);
        for (const l of listeners) l(name, ws);
        if (required.every((n) => server.has(n))) started();
      });
    }
    if (required.length === 0) started!();
    const op: Operation = {
      id: 'op',
      class: spec.class,
      description: spec.description,
      created_at: '',
      updated_at: '',
      status: 'Running',
      status_code: 103,
      resources: spec.resources ?? null,
      metadata: { ...spec.metadata, fds },
      may_cancel: false,
      err: '',
      location: 'none',
    };
    for (const name of connect) {
      const ws = new WebSocket(`ws+unix://${sockPath}:/ws?secret=${fds[name]}`);
      ws.on('error', () => {});
      client.set(name, ws);
    }
    const running: RunningOperation = { id: 'op', sockets: server, onSocket: (fn) => listeners.push(fn), update: () => {}, signal: abort.signal };
    const done = ready.then(() => spec.run(running));
    return { op, client, done };
  }

  function request(
    route: Route[],
    method: string,
    name: string,
    o: { body?: unknown; query?: Record<string, string>; headers?: Record<string, string>; raw?: Buffer; identity?: Identity },
  ) {
    let started: Started | undefined;
    const connect: string[] = [];
    const req: ApiRequest = {
      ctx: env.ctx,
      method,
      path: '',
      params: { name },
      query: new URLSearchParams(o.query ?? {}),
      headers: Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      identity: o.identity ?? unix,
      json: async <T>() => o.body as T,
      raw: Readable.from(o.raw ? [o.raw] : []) as unknown as IncomingMessage,
      operations: {
        start: (spec) => {
          started = startOperation(spec, spec.sockets?.filter((s) => s !== 'control') ?? []);
          connect.push(...(spec.sockets ?? []));
          return started.op;
        },
      },
      events: { lifecycle: () => {} },
    };
    const handler = route.find((r) => r.method === method && r.path.startsWith('/1.0/instances/'))!.handler;
    return { result: handler(req), started: () => started! };
  }

  const opened = (ws: WebSocket): Promise<unknown> => (ws.readyState === ws.OPEN ? Promise.resolve() : new Promise((r) => ws.once('open', r)));

  /** Runs a non-interactive command; returns exit code, stdout, stderr. */
  async function exec(name: string, command: string[], o: { stdin?: string; env?: Record<string, string>; cwd?: string; user?: number; group?: number } = {}) {
    const call = request(execRoutes.routes, 'POST', name, {
      body: {
        command,
        environment: o.env ?? {},
        'wait-for-websocket': true,
        interactive: false,
        width: 0,
        height: 0,
        user: o.user ?? null,
        group: o.group ?? null,
        cwd: o.cwd ?? null,
      },
    });
    const res = await call.result;
    if (res.type !== 'async') throw new Error('not async');
    const s = call.started();
    const collect = (ws: WebSocket): Promise<string> =>
      new Promise((resolve) => {
        let out = '';
        ws.on('message', (d: Buffer) => (out += d.toString()));
        ws.on('close', () => resolve(out));
      });
    const stdout = collect(s.client.get('1')!);
    const stderr = collect(s.client.get('2')!);
    const stdin = s.client.get('0')!;
    await opened(stdin);
    if (o.stdin) stdin.send(Buffer.from(o.stdin), { binary: true });
    stdin.send('');
    const meta = (await s.done) as { return: number };
    return { code: meta.return, stdout: await stdout, stderr: await stderr, op: res.operation };
  }

  test.serial('exec: exit code, stdout and stderr apart, stdin, env, cwd, user and group', async (t) => {
    const r = await exec('x1', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    t.is(r.code, 3);
    t.is(r.stdout, 'out\n');
    t.is(r.stderr, 'err\n');
    t.deepEqual(Object.keys(r.op.metadata!.fds as object).sort(), ['0', '1', '2', 'control']);
    t.is((await exec('x1', ['cat'], { stdin: 'hello\n' })).stdout, 'hello\n');
    t.is((await exec('x1', ['sh', '-c', 'echo $FOO'], { env: { FOO: 'bar baz' } })).stdout, 'bar baz\n');
    t.is((await exec('x1', ['pwd'], { cwd: '/etc' })).stdout, '/etc\n');
    t.is((await exec('x1', ['id', '-u'], { user: 1000 })).stdout, '1000\n');
    t.is((await exec('x1', ['id', '-g'], { user: 1000, group: 50 })).stdout, '50\n');
    const missing = await exec('x1', ['/no/such/command']);
    t.is(missing.code, 127);
    t.regex(missing.stderr, /no\/such\/command/);
  });

  test.serial('exec: a signal on the control stream reaches the command', async (t) => {
    const call = request(execRoutes.routes, 'POST', 'x1', { body: { command: ['sleep', '60'], 'wait-for-websocket': true, interactive: false } });
    const res = await call.result;
    t.is(res.type, 'async');
    const s = call.started();
    const secret = (res as Extract<ApiResult, { type: 'async' }>).operation.metadata!.fds as Record<string, string>;
    const control = new WebSocket(`ws+unix://${sockPath}:/ws?secret=${secret.control}`);
    await opened(control);
    await new Promise((r) => setTimeout(r, 300));
    control.send(JSON.stringify({ command: 'signal', signal: 15 }));
    const meta = (await s.done) as { return: number };
    t.is(meta.return, 128 + 15);
  });

  test.serial('exec: interactive runs on a pty of the container, window-resize works', async (t) => {
    const call = request(execRoutes.routes, 'POST', 'x1', {
      body: {
        command: ['sh', '-c', 'tty; stty size; read l; stty size; echo got $l'],
        'wait-for-websocket': true,
        interactive: true,
        width: 100,
        height: 30,
        environment: { TERM: 'xterm' },
      },
    });
    const res = await call.result;
    const s = call.started();
    const fds = (res as Extract<ApiResult, { type: 'async' }>).operation.metadata!.fds as Record<string, string>;
    t.deepEqual(Object.keys(fds).sort(), ['0', 'control']);
    const control = new WebSocket(`ws+unix://${sockPath}:/ws?secret=${fds.control}`);
    const data = s.client.get('0')!;
    let out = '';
    data.on('message', (d: Buffer) => (out += d.toString()));
    const closed = new Promise((r) => data.on('close', r));
    await opened(control);
    while (!out.includes('30 100')) await new Promise((r) => setTimeout(r, 50));
    control.send(JSON.stringify({ command: 'window-resize', args: { width: '120', height: '40' } }));
    await new Promise((r) => setTimeout(r, 200));
    data.send(Buffer.from('hi\r'), { binary: true });
    const meta = (await s.done) as { return: number };
    await closed;
    t.is(meta.return, 0);
    t.regex(out, /\/dev\/pts\/\d+/);
    t.regex(out, /40 120/);
    t.regex(out, /got hi/);
  });

  test.serial('exec: garbage frames and an early close leave the server alive and end the operation', async (t) => {
    const call = request(execRoutes.routes, 'POST', 'x1', { body: { command: ['sleep', '60'], 'wait-for-websocket': true } });
    await call.result;
    const s = call.started();
    const c0 = s.client.get('0')!;
    for (const ws of s.client.values()) await opened(ws);
    await new Promise((r) => setTimeout(r, 300));
    c0.send('not json at all');
    c0.send(Buffer.alloc(0), { binary: true });
    for (const ws of s.client.values()) ws.terminate();
    const meta = (await s.done) as { return: number };
    t.is(meta.return, 128 + 1, 'the command got a hang-up');
    t.is((await exec('x1', ['true'])).code, 0);
  });

  test.serial('exec: bad bodies are 400, unknown or hidden instances 404, a stopped one 400', async (t) => {
    for (const body of [
      null,
      [],
      { command: [] },
      { command: 'ls' },
      { command: ['ls'], environment: { A: 1 } },
      { command: ['ls'], user: -1 },
      { command: ['ls'], interactive: 'yes' },
    ]) {
      await t.throwsAsync(request(execRoutes.routes, 'POST', 'x1', { body }).result, { message: /must/ }, JSON.stringify(body));
    }
    const nope = await t.throwsAsync(request(execRoutes.routes, 'POST', 'nope', { body: { command: ['ls'] } }).result);
    t.is((nope as { status?: number }).status, 404);
  });

  test.serial('a restricted certificate meets other instances as missing ones (404)', async (t) => {
    const restricted: Identity = { protocol: 'tls', name: 'team-a', trusted: true, instances: ['team-a-*'] };
    const calls = [
      request(execRoutes.routes, 'POST', 'x1', { body: { command: ['true'] }, identity: restricted }).result,
      request(fileRoutes.routes, 'GET', 'x1', { query: { path: '/etc/hostname' }, identity: restricted }).result,
      request(fileRoutes.routes, 'POST', 'x1', { query: { path: '/tmp/x' }, raw: Buffer.from('x'), identity: restricted }).result,
      request(fileRoutes.routes, 'DELETE', 'x1', { query: { path: '/etc/hostname' }, identity: restricted }).result,
    ];
    for (const c of calls) t.is(((await t.throwsAsync(c)) as { status?: number }).status, 404);
  });

  async function getFile(name: string, p: string) {
    const res = await request(fileRoutes.routes, 'GET', name, { query: { path: p } }).result;
    if (res.type !== 'raw') throw new Error('not raw');
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(res.body)) chunks.push(res.body);
    else for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
    return { headers: res.headers!, body: Buffer.concat(chunks) };
  }
  const post = (name: string, p: string, headers: Record<string, string>, raw = Buffer.alloc(0)) =>
    request(fileRoutes.routes, 'POST', name, { query: { path: p }, headers: { 'Content-Length': String(raw.length), ...headers }, raw }).result;

  for (const running of [true, false]) {
    test.serial(`files (${running ? 'running' : 'stopped'}): put, get, append, directories, symlinks, delete`, async (t) => {
      if (!running) env.ok(t, ['stop', 'x2']);
      const name = 'x2';
      await post(name, '/root/a.txt', { 'X-LXD-uid': '1000', 'X-LXD-gid': '50', 'X-LXD-mode': '0640' }, Buffer.from('one\n'));
      let g = await getFile(name, '/root/a.txt');
      t.is(g.body.toString(), 'one\n');
      t.like(g.headers, { 'X-LXD-uid': '1000', 'X-LXD-gid': '50', 'X-LXD-mode': '0640', 'X-LXD-type': 'file' });
      await post(name, '/root/a.txt', { 'X-LXD-write': 'append' }, Buffer.from('two\n'));
      t.is((await getFile(name, '/root/a.txt')).body.toString(), 'one\ntwo\n');
      await post(name, '/root/d', { 'X-LXD-type': 'directory', 'X-LXD-mode': '0700' });
      await post(name, '/root/d/l', { 'X-LXD-type': 'symlink' }, Buffer.from('/etc/hostname'));
      g = await getFile(name, '/root/d');
      t.is(g.headers['X-LXD-type'], 'directory');
      t.is(g.headers['X-LXD-mode'], '0700');
      t.deepEqual(JSON.parse(g.body.toString()).metadata, ['l']);
      g = await getFile(name, '/root/d/l');
      t.is(g.headers['X-LXD-type'], 'symlink');
      t.is(g.body.toString(), '/etc/hostname');
      const notEmpty = await t.throwsAsync(request(fileRoutes.routes, 'DELETE', name, { query: { path: '/root/d' } }).result);
      t.is((notEmpty as { status?: number }).status, 400);
      await request(fileRoutes.routes, 'DELETE', name, { query: { path: '/root/d/l' } }).result;
      await request(fileRoutes.routes, 'DELETE', name, { query: { path: '/root/d' } }).result;
      await request(fileRoutes.routes, 'DELETE', name, { query: { path: '/root/a.txt' } }).result;
      const gone = await t.throwsAsync(getFile(name, '/root/a.txt'));
      t.is((gone as { status?: number }).status, 404);
      // A size that does not match what arrived writes nothing.
      await t.throwsAsync(
        request(fileRoutes.routes, 'POST', name, { query: { path: '/root/short' }, headers: { 'content-length': '100' }, raw: Buffer.from('abc') }).result,
      );
      t.is(((await t.throwsAsync(getFile(name, '/root/short'))) as { status?: number }).status, 404);
    });

    test.serial(`files (${running ? 'running' : 'stopped'}): symlinks in the container never lead outside its root`, async (t) => {
      const name = 'x2';
      const outside = path.join(env.root, 'outside.txt');
      fs.writeFileSync(outside, 'host secret\n');
      await post(name, '/esc', { 'X-LXD-type': 'symlink' }, Buffer.from(outside));
      await post(name, '/escdir', { 'X-LXD-type': 'symlink' }, Buffer.from('../../../../../../..' + env.root));
      // Through the symlink: resolved inside the container, where that path does not exist.
      await t.throwsAsync(getFile(name, '/escdir/outside.txt'), { message: /Not found/ });
      await t.throwsAsync(post(name, '/escdir/outside.txt', {}, Buffer.from('pwned\n')));
      await post(name, '/esc', { 'X-LXD-write': 'append' }, Buffer.from('pwned\n')).catch(() => {});
      // Overwriting the symlink replaces it; it never writes through it.
      await post(name, '/esc', {}, Buffer.from('inside\n'));
      t.is(fs.readFileSync(outside, 'utf8'), 'host secret\n');
      t.is((await getFile(name, '/esc')).body.toString(), 'inside\n');
      for (const p of ['/esc', '/escdir']) await request(fileRoutes.routes, 'DELETE', name, { query: { path: p } }).result;
      t.true(fs.existsSync(outside));
    });
  }
}
