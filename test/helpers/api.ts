import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { TestFn } from 'ava';
import { routes } from '../../lib/api/routes/index.js';
import { startServer, type RunningServer } from '../../lib/api/server.js';
import type { Route } from '../../lib/api/types.js';
import { launcherPath, TestEnv } from './env.js';
import { teardownNetworks } from './network.js';
import { leftoverHooks } from './suite.js';

/**
 * `tslxc serve` for a test: the built launcher started in a TestEnv, the real `lxc` 5.0 client
 * (each call with its own LXD_CONF unless given one) and pylxd (Debian's, with /usr/bin/python3)
 * pointed at its socket through LXD_DIR, and raw requests over the socket.
 */

/** A decoded JSON answer: tests read nested fields by name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** the body as JSON, or undefined */
  json?: { type: string; status_code?: number; error_code?: number; error?: string; operation?: string; metadata?: Json };
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** PID's children (the kernel's list; empty once it is gone). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export class ApiServer {
  private exited: Promise<number | null>;
  log = '';

  private constructor(
    readonly env: TestEnv,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  }

  get socket(): string {
    return path.join(this.env.paths.stateDir, 'unix.socket');
  }

  /** Starts `tslxc serve ARGS` (with opts.env added to the TestEnv's) and waits until GET /1.0 answers on the socket. */
  static async start(env: TestEnv, args: string[] = [], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ApiServer> {
    const child = spawn(launcherPath, ['serve', ...args], { env: { ...env.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new ApiServer(env, child);
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    let done = false;
    void server.exited.then(() => (done = true));
    while (Date.now() < deadline && !done) {
      if (fs.existsSync(server.socket)) {
        const r = await server.request('GET', '/1.0').catch(() => undefined);
        if (r?.status === 200) return server;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`tslxc serve did not come up: ${server.log.trim()}`);
  }

  /** The HTTPS addresses it listens on (from its "listening on" line). */
  get httpsAddresses(): string[] {
    const m = /https:\/\/(.*)$/m.exec(this.log);
    return m ? m[1]!.split(', https://').map((s) => s.trim()) : [];
  }

  /** The PID bin/tslxc started: serve's native front (it holds the sockets), or node without it. */
  get pid(): number {
    return this.child.pid!;
  }

  /** The node workers running now (the front's children; the server itself without a front). */
  workerPids(): number[] {
    return childPids(this.pid).filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tslxc.js');
      } catch {
        return false;
      }
    });
  }

  /** The node process serving now: the front's worker (undefined while none runs), or the server. */
  get workerPid(): number | undefined {
    const front = fs.readFileSync(`/proc/${this.pid}/cmdline`, 'utf8').includes('serve-front');
    return front ? this.workerPids()[0] : this.pid;
  }

  /**
   * One request over the unix socket. opts.fresh: on a connection of its own, closed after it
   * (`agent: false`, which asks for `Connection: close`), as a one-shot client's.
   */
  request(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}, opts: { fresh?: boolean } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const req = http.request(
        {
          socketPath: this.socket,
          method,
          path: urlPath,
          headers: { ...(data && !headers['Transfer-Encoding'] ? { 'Content-Length': String(data.length) } : {}), ...headers },
          ...(opts.fresh ? { agent: false } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: Reply['json'];
            try {
              json = JSON.parse(text) as Reply['json'];
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('request timed out')));
      req.end(data);
    });
  }

  /** A fresh LXD_CONF for the `lxc` client. */
  lxcConf(): string {
    return fs.mkdtempSync(path.join(this.env.root, 'lxc-conf-'));
  }

  /** The real `lxc` client against this server's socket (LXD_DIR); a fresh LXD_CONF unless given. */
  lxc(args: string[], opts: { conf?: string; input?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
    const conf = opts.conf ?? this.lxcConf();
    return run('lxc', args, {
      env: { ...process.env, LXD_DIR: this.env.paths.stateDir, LXD_CONF: conf, LXD_SOCKET: '', HOME: this.env.root },
      input: opts.input,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** A Python script run by Debian's python3 with pylxd importable, LXD_DIR set to the state dir. */
  pylxd(script: string, opts: { timeoutMs?: number } = {}): Promise<ToolResult> {
    return run('/usr/bin/python3', ['-c', script], {
      env: { ...process.env, LXD_DIR: this.env.paths.stateDir, HOME: this.env.root, PYTHONPATH: '' },
      timeoutMs: opts.timeoutMs,
    });
  }

  /** SIGTERM, and the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGKILL, as a crash; returns once its worker (killed with it, PR_SET_PDEATHSIG) is gone too. */
  async kill(): Promise<void> {
    const workers = this.child.exitCode === null ? this.workerPids() : [];
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    for (let i = 0; i < 200 && workers.some((pid) => fs.existsSync(`/proc/${pid}`)); i++) await new Promise((r) => setTimeout(r, 25));
  }

  /**
   * Waits for node's server to die by SIGKILL (a crash point's): the process itself, or serve's
   * worker as its front reports it, and then kills the front too, so that the whole server
   * crashed. False when neither happened within ms.
   */
  async crashed(ms = 60_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return (await this.exited) === 128;
      if (/worker \d+ ended \(signal 9\)/.test(this.log)) {
        await this.kill();
        return true;
      }
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get done(): Promise<number | null> {
    return this.exited;
  }
}

export interface ApiSuite {
  env: TestEnv;
  /** The running server (a test that restarts it puts the new one here, for the stop after). */
  server: ApiServer;
  /** An LXD_CONF dir of the `lxc` client for this server. */
  conf: string;
}

export interface ApiSuiteOptions {
  /** built (`tslxc image build NAME`) before the server starts */
  images?: string[];
  /** containers made from the first image before the server starts: running, unless `stopped` */
  containers?: Array<{ name: string; stopped?: boolean }>;
  /** `tslxc serve`'s arguments, and environment on top of the TestEnv's */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Runs once the server is up, before the tests. */
  ready?(suite: ApiSuite): Promise<void>;
  /** The tests may make networks (a fuzzed body, a client's create): containers and bridges go after. */
  networks?: boolean;
  /** false: no server before the tests (each starts its own); `server` and `conf` stay unset */
  serve?: boolean;
}

/**
 * The set-up an API test file shares: a TestEnv with its images built and containers made, `tslxc
 * serve` started on it with a client config dir, and after the tests the server stopped, the
 * installation removed and the host checked for leftovers (leftoverHooks).
 */
export function apiSuite(test: TestFn, label: string, opts: ApiSuiteOptions = {}): ApiSuite {
  const suite = { env: new TestEnv(label) } as ApiSuite;
  const env = suite.env;
  test.serial.before(async () => {
    for (const image of opts.images ?? []) {
      const r = env.cli(['image', 'build', image]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    for (const c of opts.containers ?? []) {
      const r = env.cli([c.stopped ? 'create' : 'launch', opts.images![0]!, c.name]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    if (opts.serve === false) return;
    suite.server = await ApiServer.start(env, opts.args, { env: opts.env });
    suite.conf = suite.server.lxcConf();
    await opts.ready?.(suite);
  });
  test.serial.after.always('stop the server', async () => {
    await suite.server?.stop();
    if (!opts.networks) return;
    await env.deleteContainers();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);
  return suite;
}

/**
 * The server in this process (lib/api/server.ts startServer, HTTPS on a free port) with a test's
 * own route added to the modules' for the file's tests; after them, the route taken out and the
 * installation removed.
 */
export function inProcessSuite(test: TestFn, label: string, stub: Route): { env: TestEnv; server: RunningServer } {
  const suite = { env: new TestEnv(label) } as { env: TestEnv; server: RunningServer };
  test.serial.before(async () => {
    routes.push(stub);
    suite.server = await startServer(suite.env.ctx, { listen: ['127.0.0.1:0'] });
  });
  test.serial.after.always(async () => {
    await suite.server?.close();
    routes.splice(routes.indexOf(stub), 1);
    await suite.env.cleanup();
  });
  return suite;
}
