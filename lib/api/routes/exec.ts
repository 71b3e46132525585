import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { allowsInstance } from '../access.js';
import { ApiError, type ApiRequest, type ApiResult, type OperationSpec, type Route, type RunningOperation } from '../types.js';

/**
 * POST /1.0/instances/{name}/exec: LXD's exec over websockets. The command runs through the same
 * helper entry as `tslxc exec` (lib/instance/exec.ts attachArgs: namespaces, cgroups, the exec
 * server, user/group/cwd resolution, the environment defaults), with pipes the server relays: the
 * data streams as they are (not interactive: stdout and stderr apart), or a pty of the
 * container's that the helper allocates and relays over the same pipes (interactive). Window
 * sizes and signals go to the helper on its control pipe (native/ptyctl.c).
 *
 * tslxc's extension (tslxc_exec_one_websocket): a request with "tslxc-one-websocket": true gets one
 * stream, "mux", instead of '0', '1', '2' and 'control', so that a client makes one connection
 * where LXD's exec takes four, and needs no /wait. On it, client to server: binary frames are
 * stdin, an empty text frame its end, other text frames control messages; server to client:
 * binary frames whose first byte is the stream (1 stdout, 2 stderr), then, once both are drained,
 * one text frame {"return": CODE}. A client that asks it of a server without the extension (LXD
 * ignores unknown fields) gets the standard streams in metadata.fds and uses those.
 */

interface ExecPost {
  command: string[];
  environment: Record<string, string>;
  waitForWebsocket: boolean;
  interactive: boolean;
  width: number;
  height: number;
  user?: number;
  group?: number;
  cwd?: string;
  /** Not relayed: stdout and stderr go to the instance's log files (lib/instance/logs.ts). */
  recordOutput: boolean;
  /** tslxc_exec_one_websocket: every stream on the one websocket "mux". */
  oneWebsocket: boolean;
}

const MAX_DIM = 10000;
/** How long a command whose client hung up has, after SIGHUP, before SIGKILL (as the SSH gateway). */
const HANGUP_GRACE_MS = 10_000;
/** After the command ended, what it wrote before is relayed for at most this long (processes it left behind may hold the pipes for ever). */
const DRAIN_MS = 1000;
/** Output queued on a websocket beyond this pauses the command's pipe (a slow client slows the command, not the server). */
const HIGH_WATER = 1 << 20;

const invalid = (why: string): ApiError => new ApiError(400, why);

function hasNul(s: string): boolean {
  return s.includes('\0');
}

/** The request body as LXD's api.InstanceExecPost, checked field by field (null: the default, as pylxd sends). */
export function parseExecPost(body: unknown): ExecPost {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const cmd = b.command;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === 'string' && !hasNul(c)))
    throw invalid('"command" must be a non-empty list of strings');
  const environment: Record<string, string> = {};
  if (b.environment !== undefined && b.environment !== null) {
    if (typeof b.environment !== 'object' || Array.isArray(b.environment)) throw invalid('"environment" must be an object of strings');
    for (const [k, v] of Object.entries(b.environment as Record<string, unknown>)) {
      if (typeof v !== 'string' || !k || k.includes('=') || hasNul(k) || hasNul(v))
        throw invalid(`"environment" entry "${k}" must be a name without "=" and a string value`);
      environment[k] = v;
    }
  }
  const flag = (key: string): boolean => {
    const v = b[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw invalid(`"${key}" must be a boolean`);
    return v;
  };
  const int = (key: string, max: number): number | undefined => {
    const v = b[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw invalid(`"${key}" must be an integer from 0 to ${max}`);
    return v;
  };
  let cwd: string | undefined;
  if (b.cwd !== undefined && b.cwd !== null && b.cwd !== '') {
    if (typeof b.cwd !== 'string' || hasNul(b.cwd)) throw invalid('"cwd" must be a string');
    cwd = b.cwd;
  }
  const waitForWebsocket = flag('wait-for-websocket');
  // As LXD: output is recorded only when no websocket carries it.
  const recordOutput = flag('record-output') && !waitForWebsocket;
  return {
    recordOutput,
    oneWebsocket: waitForWebsocket && flag('tslxc-one-websocket'),
    command: cmd as string[],
    environment,
    waitForWebsocket,
    interactive: flag('interactive'),
    width: int('width', 0xffffffff) ?? 0,
    height: int('height', 0xffffffff) ?? 0,
    user: int('user', 0xfffffffe),
    group: int('group', 0xfffffffe),
    cwd,
  };
}

const dim = (n: number, fallback: number): number => (n > 0 ? Math.min(n, MAX_DIM) : fallback);

/** A control message: `{"command":"window-resize","args":{"width":"80","height":"24"}}` or `{"command":"signal","signal":N}`; anything else: null. */
export function controlLine(text: string): string | null {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null) return null;
  const m = msg as { command?: unknown; args?: unknown; signal?: unknown };
  const num = (v: unknown): number | undefined => {
    const n = typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
    return Number.isInteger(n) ? n : undefined;
  };
  if (m.command === 'window-resize' && typeof m.args === 'object' && m.args !== null) {
    const { width, height } = m.args as Record<string, unknown>;
    const w = num(width);
    const h = num(height);
    if (w === undefined || h === undefined || w < 1 || h < 1 || w > MAX_DIM || h > MAX_DIM) return null;
    return `w ${h} ${w}\n`;
  }
  if (m.command === 'signal') {
    const sig = num(m.signal);
    if (sig === undefined || sig < 1 || sig > 64) return null;
    return `s ${sig}\n`;
  }
  return null;
}

/** Sends a pipe's bytes as binary frames (after the byte `stream`, on "mux"), pausing the pipe while the client lags. */
function relayOut(from: Readable, ws: WebSocket | undefined, stream?: number): void {
  from.on('data', (chunk: Buffer) => {
    if (!ws || ws.readyState !== ws.OPEN) return; // gone: the output is dropped, the command goes on
    ws.send(stream === undefined ? chunk : Buffer.concat([Buffer.of(stream), chunk]), { binary: true }, () => {
      if (from.isPaused() && ws.bufferedAmount < HIGH_WATER) from.resume();
    });
    if (ws.bufferedAmount >= HIGH_WATER) from.pause();
  });
}

/**
 * A websocket's binary frames into a pipe; an empty text frame or a close is its end. Other text
 * frames go to `onText` (the control messages of "mux"), or are dropped.
 */
function relayIn(ws: WebSocket, to: Writable, onText?: (text: string) => void): void {
  const end = (): void => {
    if (!to.writableEnded) to.end();
  };
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (!isBinary && buf.length === 0) return end();
    if (!isBinary) return onText?.(buf.toString());
    if (to.writableEnded || buf.length === 0) return;
    if (!to.write(buf)) {
      ws.pause();
      to.once('drain', () => ws.resume());
    }
  });
  ws.on('close', end);
  ws.on('error', end);
}

function closeSocket(ws: WebSocket | undefined): void {
  if (ws && (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)) ws.close(1000);
}

/** Waits for a pipe's end, at most until `deadline`; then drops it. */
function drained(s: Readable | null, deadline: number): Promise<void> {
  if (!s || s.readableEnded || s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => {
        s.destroy();
        resolve();
      },
      Math.max(0, deadline - Date.now()),
    );
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    s.once('end', done);
    s.once('close', done);
  });
}

/**
 * One helper started ahead of the next relayed exec, with its pipes (native/spare.c): the exec
 * then only writes it its arguments. node spawns by fork(), which copies the server's page tables
 * and blocks the server until the child has exec'd, two waits for a CPU on a loaded host: the
 * larger part of an exec's time in the server. The spare is started after an exec, and dies by
 * itself with the server (its arguments pipe ends).
 */
const SPARE_ARGS_FD = 4;
let spare: { helper: string; child: ChildProcess } | undefined;
let spareQueued = false;

/** The helper's environment: PATH, and TERM where the request gives one (for the pty). */
function helperEnv(term: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  if (term !== undefined) env.TERM = term;
  return env;
}

function queueSpare(helper: string): void {
  if (spare || spareQueued) return;
  spareQueued = true;
  // After the work of this turn (the operation's end, its events and closes) is written out.
  setImmediate(() => {
    spareQueued = false;
    if (spare) return;
    const child = spawn(helper, ['spare', '--args-fd', String(SPARE_ARGS_FD)], { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'], env: helperEnv(undefined) });
    child.on('error', () => {});
    // A spare alone keeps neither the server nor a test's process alive.
    child.unref();
    for (const s of child.stdio) (s as { unref?: () => void } | null)?.unref?.();
    spare = { helper, child };
    child.once('exit', () => {
      if (spare?.child === child) spare = undefined;
    });
  });
}

/** The spare made into this command's helper, or a new helper. */
function startHelper(helper: string, args: string[], term: string | undefined, relayed: boolean, record?: { stdout: number; stderr: number }): ChildProcess {
  const ready = relayed ? spare : undefined;
  if (ready) spare = undefined;
  if (ready && ready.helper === helper && ready.child.exitCode === null && ready.child.signalCode === null) {
    const { child } = ready;
    child.ref();
    for (const s of child.stdio) (s as { ref?: () => void } | null)?.ref?.();
    const records = [String(args.length), ...args, ...(term !== undefined ? [`TERM=${term}`] : [])];
    const argsPipe = child.stdio[SPARE_ARGS_FD] as Writable;
    argsPipe.on('error', () => {}); // the spare died: its exit reports the failure
    argsPipe.end(records.map((r) => `${r}\0`).join(''));
    return child;
  }
  ready?.child.kill();
  // fd 3: the control pipe (signals, and window sizes of a pty).
  const stdio: Array<'pipe' | 'ignore' | number> = relayed
    ? ['pipe', 'pipe', 'pipe', 'pipe']
    : ['ignore', record ? record.stdout : 'ignore', record ? record.stderr : 'ignore', 'pipe'];
  return spawn(helper, args, { stdio, env: helperEnv(term) });
}

async function runCommand(
  helper: string,
  args: string[],
  term: string | undefined,
  post: ExecPost,
  op: RunningOperation,
  record?: { stdout: number; stderr: number },
): Promise<number> {
  const relayed = post.waitForWebsocket;
  const child = startHelper(helper, args, term, relayed, record);
  const control = child.stdio[3] as Writable;
  control.on('error', () => {});
  child.stdin?.on('error', () => {}); // EPIPE once the command closed its input: it no longer matters
  const send = (line: string | null): void => {
    if (line && !control.writableEnded && child.exitCode === null && child.signalCode === null) control.write(line);
  };

  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(255));
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? os.constants.signals[sig] : 0)));
  });

  let hangupTimer: NodeJS.Timeout | undefined;
  const hangup = (): void => {
    if (hangupTimer) return;
    send('s 1\n');
    hangupTimer = setTimeout(() => send('s 9\n'), HANGUP_GRACE_MS);
  };
  const onAbort = (): void => send('s 9\n');
  op.signal.addEventListener('abort', onAbort);
  if (op.signal.aborted) onAbort();

  const onControl = (text: string): void => {
    if (text.length <= 4096) send(controlLine(text));
  };
  const watchControl = (ws: WebSocket): void => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      onControl(Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as Buffer).toString());
    });
    ws.on('error', () => {});
  };

  const sockets = op.sockets;
  const mux = post.oneWebsocket ? sockets.get('mux') : undefined;
  if (mux) {
    mux.on('error', () => {});
    relayIn(mux, child.stdin!, onControl);
    relayOut(child.stdout!, mux, 1);
    relayOut(child.stderr!, mux, post.interactive ? 1 : 2);
    mux.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) hangup();
    });
  } else if (relayed) {
    const data = post.interactive ? ['0'] : ['0', '1', '2'];
    for (const name of data) sockets.get(name)?.on('error', () => {});
    relayIn(sockets.get('0')!, child.stdin!);
    if (post.interactive) {
      // The pty carries both output streams; the helper's own failure lines come on its stderr.
      relayOut(child.stdout!, sockets.get('0'));
      relayOut(child.stderr!, sockets.get('0'));
    } else {
      relayOut(child.stdout!, sockets.get('1'));
      relayOut(child.stderr!, sockets.get('2'));
    }
    // A client that dropped every data stream hung up: as a terminal's hang-up, then a kill.
    let open = data.length;
    for (const name of data)
      sockets.get(name)?.once('close', () => {
        if (--open === 0 && child.exitCode === null && child.signalCode === null) hangup();
      });
  }
  const controlWs = sockets.get('control');
  if (controlWs) watchControl(controlWs);
  op.onSocket((name, ws) => {
    if (name === 'control') watchControl(ws);
    ws.resume();
  });
  // A server may hold a socket's frames (ws.pause) until its operation runs: they reach us now.
  for (const ws of sockets.values()) ws.resume();

  const code = await exited;
  clearTimeout(hangupTimer);
  op.signal.removeEventListener('abort', onAbort);
  control.end();
  const deadline = Date.now() + DRAIN_MS;
  await Promise.all([drained(child.stdout, deadline), drained(child.stderr, deadline)]);
  child.stdin?.destroy();
  // After every output frame: the client needs no /wait.
  if (mux && mux.readyState === mux.OPEN) mux.send(JSON.stringify({ return: code }));
  for (const ws of sockets.values()) closeSocket(ws);
  if (relayed) queueSpare(helper);
  return code;
}

async function execHandler(req: ApiRequest): Promise<ApiResult> {
  const name = req.params.name;
  if (!allowsInstance(req.identity, name)) throw new ApiError(404, 'Instance not found');
  const post = parseExecPost(await req.json());
  const [{ attachArgs }, { requireInstance }, { helperPath }] = await Promise.all([
    import('../../instance/exec.js'),
    import('../../state/runtime.js'),
    import('../../state/helper.js'),
  ]);
  try {
    requireInstance(req.ctx.paths, name);
  } catch {
    throw new ApiError(404, 'Instance not found');
  }
  const relayed = post.waitForWebsocket;
  const pty = relayed && post.interactive;
  let args: string[];
  try {
    args = await attachArgs(req.ctx, name, post.command, {
      env: post.environment,
      cwd: post.cwd,
      // LXD's 0 is "as the request did not say": root, and the user's own groups.
      user: post.user ? String(post.user) : undefined,
      group: post.group ? String(post.group) : undefined,
      relayedPty: pty ? { rows: dim(post.height, 24), cols: dim(post.width, 80), controlFd: 3 } : undefined,
      controlFd: 3,
    });
  } catch (err) {
    if ((err as { kind?: string }).kind === 'not-found') throw err;
    throw new ApiError(400, (err as Error).message);
  }
  const helper = helperPath();
  const source = `/1.0/instances/${name}`;
  const spec: OperationSpec = {
    class: relayed ? 'websocket' : 'task',
    description: 'Executing command',
    resources: { instances: [source], containers: [`/1.0/containers/${name}`] },
    metadata: { command: post.command, environment: post.environment, interactive: post.interactive },
    ...(relayed ? streamsOf(post) : {}),
    async run(op) {
      req.events.lifecycle('instance-exec', source, { command: post.command });
      // The helper reads TERM (for the pty) and nothing else of its environment.
      if (!post.recordOutput) return { return: await runCommand(helper, args, post.environment.TERM, post, op) };
      // LXD's recorded output: two files under the instance, named by the operation, whose URLs
      // the finished operation gives (GET /1.0/instances/NAME/logs/FILE).
      const { openExecRecording } = await import('../../instance/logs.js');
      const rec = openExecRecording(req.ctx, name, op.id);
      let code: number;
      try {
        code = await runCommand(helper, args, post.environment.TERM, post, op, rec);
      } finally {
        fs.closeSync(rec.stdout);
        fs.closeSync(rec.stderr);
      }
      const logUrl = (f: string) => `${source}/logs/${f}`;
      return { return: code, output: { '1': logUrl(rec.files[0]), '2': logUrl(rec.files[1]) } };
    },
  };
  return { type: 'async', operation: req.operations.start(spec) };
}

/** The websockets of a relayed exec: the one "mux" (tslxc_exec_one_websocket), or LXD's. */
function streamsOf(post: ExecPost): Pick<OperationSpec, 'sockets' | 'required'> {
  if (post.oneWebsocket) return { sockets: ['mux'], required: ['mux'] };
  return post.interactive ? { sockets: ['0', 'control'], required: ['0'] } : { sockets: ['0', '1', '2', 'control'], required: ['0', '1', '2'] };
}

// LXD serves the pre-`instances` paths too; a 5.0 client uses them when `instances` is not listed.
export const routes: Route[] = ['instances', 'containers'].map((kind): Route => ({ method: 'POST', path: `/1.0/${kind}/{name}/exec`, handler: execHandler }));

/** What works of LXD 5.0's exec, and tslxc's own one-websocket exec. */
export const extensions: string[] = ['container_exec_user_group_cwd', 'container_exec_signal_handling', 'container_exec_recording', 'tslxc_exec_one_websocket'];
