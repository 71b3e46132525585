import { spawnSync } from 'node:child_process';
import type { WebSocket } from 'ws';
import { TslxcError } from '../../errors.js';
import type { RemoteServer } from '../../client/connection.js';
import { instancePath, withRemote } from './connect.js';

export interface RemoteExecOptions {
  tty: boolean;
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  group?: string;
}

/**
 * `exec REMOTE:N -- CMD`: POST /1.0/instances/N/exec with wait-for-websocket, then the streams.
 * A tslxc server gives the one websocket of its extension (tslxc_exec_one_websocket,
 * lib/api/routes/exec.ts), which the client asks for in the POST: one connection, the keep-alive
 * one of the POST, carries stdin, stdout, stderr, the control messages and the exit code. Another
 * server (LXD ignores the field) gives LXD's streams, relayed as lxc relays them: with a pty, one
 * socket both ways (stdin in raw mode), and window-resize on the control socket; without, stdin,
 * stdout and stderr each on its own; an empty text frame is the end of a stream, and the exit code
 * is the finished operation's `return`.
 */
export async function remoteExec(remote: string, name: string, command: string[], opts: RemoteExecOptions): Promise<number> {
  return withRemote(remote, (s) => execOn(s, name, command, opts));
}

/** The caller's terminal size, as the API takes it. */
const size = () => ({ width: process.stdout.columns || 80, height: process.stdout.rows || 24 });
const resizeMessage = () => JSON.stringify({ command: 'window-resize', args: { width: String(size().width), height: String(size().height) } });

async function execOn(s: RemoteServer, name: string, command: string[], opts: RemoteExecOptions): Promise<number> {
  const { operationId } = await import('../../client/connection.js');
  const user = opts.user === undefined ? undefined : await idOf(s, name, 'user', opts.user);
  const group = opts.group === undefined ? undefined : await idOf(s, name, 'group', opts.group);
  // A resize from here on is sent once a socket for control messages is there.
  const terminal = { resized: false, control: undefined as ((message: string) => void) | undefined };
  const onResize = () => {
    terminal.resized = true;
    terminal.control?.(resizeMessage());
  };
  if (opts.tty) process.stdout.on('resize', onResize);
  try {
    const { envelope } = await s.call('POST', `${instancePath(name)}/exec`, {
      command,
      environment: { ...(opts.tty ? { TERM: process.env.TERM || 'xterm' } : {}), ...(opts.env ?? {}) },
      'wait-for-websocket': true,
      interactive: opts.tty,
      'record-output': false,
      'tslxc-one-websocket': true,
      ...(opts.tty ? size() : {}),
      ...(user !== undefined ? { user } : {}),
      ...(group !== undefined ? { group } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const id = operationId(envelope);
    const fds = ((envelope.metadata as { metadata?: { fds?: Record<string, string> } })?.metadata?.fds ?? {}) as Record<string, string>;
    return await (fds.mux ? oneWebsocket(s, id, fds.mux, opts, terminal) : lxdStreams(s, id, fds, opts, terminal));
  } finally {
    if (opts.tty) process.stdout.off('resize', onResize);
  }
}

interface Terminal {
  /** a window-resize happened before `control` was there */
  resized: boolean;
  /** sends a control message (window-resize) to the server */
  control?: (message: string) => void;
}

/** tslxc's one websocket: binary frames out are stdin; in, a stream byte (1 stdout, 2 stderr) and its data; then {"return": N}. */
async function oneWebsocket(s: RemoteServer, id: string, secret: string, opts: RemoteExecOptions, terminal: Terminal): Promise<number> {
  const ws = await s.websocket(id, secret);
  terminal.control = (message) => {
    if (ws.readyState === ws.OPEN) ws.send(message, { binary: false });
  };
  if (terminal.resized) terminal.control(resizeMessage());
  let code: number | undefined;
  const ended = new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) {
        if (data.length > 1) (data[0] === 2 ? process.stderr : process.stdout).write(data.subarray(1));
        return;
      }
      let r: unknown;
      try {
        r = (JSON.parse(data.toString('utf8')) as { return?: unknown }).return;
      } catch {
        return;
      }
      if (typeof r === 'number') {
        code = r;
        resolve();
      }
    });
    ws.on('close', () => resolve());
    ws.on('error', () => resolve());
  });
  ws.resume();
  const undo = relayStdin(opts.tty, {
    data: (d) => ws.readyState === ws.OPEN && ws.send(d, { binary: true }),
    end: () => !opts.tty && ws.readyState === ws.OPEN && ws.send('', { binary: false }),
  });
  try {
    await ended;
    // No exit code: the operation failed (or the server went away); its state says why.
    if (code === undefined) code = exitCodeOf(await s.wait(id));
    return Number.isInteger(code) ? code : 1;
  } finally {
    undo();
    ws.terminate();
  }
}

/** LXD's streams: '0' (both ways with a pty), '1' and '2', and 'control'. */
async function lxdStreams(s: RemoteServer, id: string, fds: Record<string, string>, opts: RemoteExecOptions, terminal: Terminal): Promise<number> {
  const open = async (fd: string): Promise<WebSocket | undefined> => (fds[fd] ? s.websocket(id, fds[fd]!) : undefined);
  // All at once: the server starts the command when they are all connected.
  const [control, ...streams] = await Promise.all(['control', ...(opts.tty ? ['0'] : ['0', '1', '2'])].map(open));
  if (control)
    terminal.control = (message) => {
      if (control.readyState === control.OPEN) control.send(message);
    };
  if (terminal.resized) terminal.control?.(resizeMessage());
  if (streams.some((w) => !w)) throw new TslxcError(`Remote "${s.name}" gave no streams for the exec`);
  const [input, out, err] = streams as WebSocket[];

  const ended: Array<Promise<void>> = [];
  const relay = (ws: WebSocket, to: NodeJS.WritableStream) => {
    ended.push(
      new Promise<void>((resolve) => {
        ws.on('message', (data: Buffer, binary: boolean) => {
          if (binary) return void to.write(data);
          if (data.length !== 0) return;
          // The server's end of the stream. LXD ends the command's operation only once the client
          // has closed its side too (lxc's mirror does), so close it.
          ws.close(1000);
          resolve();
        });
        ws.on('close', () => resolve());
        ws.on('error', () => resolve());
      }),
    );
  };
  relay(opts.tty ? input! : out!, process.stdout);
  if (err) relay(err, process.stderr);

  for (const ws of [control, ...streams]) ws?.resume();
  const undo = relayStdin(opts.tty, {
    data: (d) => input!.readyState === input!.OPEN && input!.send(d, { binary: true }),
    end: () => !opts.tty && input!.readyState === input!.OPEN && input!.send('', { binary: false }),
  });
  try {
    const op = await s.wait(id);
    // What the command wrote before it ended is still on its way: wait for the streams' ends.
    await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 2000).unref())]);
    return exitCodeOf(op);
  } finally {
    undo();
    for (const ws of [control, ...streams]) ws?.terminate();
  }
}

function exitCodeOf(op: { metadata: Record<string, unknown> | null }): number {
  const code = Number(op.metadata?.return ?? 0);
  return Number.isInteger(code) ? code : 1;
}

/**
 * Our stdin to the command (its end too), a terminal in raw mode for a pty; returns the undo. The
 * command is over at the undo: what is left of stdin is not read (nor waited for).
 */
function relayStdin(tty: boolean, to: { data: (d: Buffer) => unknown; end: () => unknown }): () => void {
  const stdin = process.stdin;
  const raw = tty && stdin.isTTY;
  if (raw) rawTerminal();
  const onData = (d: Buffer) => void to.data(d);
  const onEnd = () => void to.end();
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  return () => {
    // libuv restores the terminal as it was before raw mode, output processing included.
    if (raw) stdin.setRawMode(false);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.destroy();
  };
}

/**
 * The terminal raw as `lxc exec -t` makes it (cfmakeraw): libuv's raw mode keeps the output
 * processing, so the remote pty's "\r\n" would reach the screen as "\r\r\n". node has no call for
 * that flag: stty clears it on our stdin's terminal.
 */
function rawTerminal(): void {
  process.stdin.setRawMode(true);
  spawnSync('stty', ['-opost'], { stdio: [0, 'ignore', 'ignore'] });
}

/**
 * The API's exec takes a uid and a gid: a name is looked up as the local exec looks it up, in the
 * container's own /etc/passwd or /etc/group (one GET of the file, only when a name is given), the
 * first entry of that exact name; a number is taken as it is.
 */
async function idOf(s: RemoteServer, name: string, what: 'user' | 'group', spec: string): Promise<number> {
  if (/^\d+$/.test(spec)) {
    const id = Number(spec);
    if (id > 0xfffffffe) throw new TslxcError(`${what} ${spec}: not a valid ${what === 'user' ? 'uid' : 'gid'}`, undefined, undefined, { exitCode: 125 });
    return id;
  }
  const file = what === 'user' ? '/etc/passwd' : '/etc/group';
  const r = await s.raw('GET', `${instancePath(name)}/files?path=${encodeURIComponent(file)}`);
  if (r.status >= 400 || r.headers['x-lxd-type'] === 'directory')
    throw new TslxcError(
      `Cannot read ${file} of "${name}"`,
      r.status >= 400 ? `HTTP ${r.status}` : 'it is a directory',
      `give the ${what === 'user' ? 'uid' : 'gid'}`,
    );
  for (const line of r.body.toString('utf8').split('\n')) {
    const f = line.split(':');
    // name:password:id:... in both files.
    if (f.length >= 3 && f[0] === spec && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  throw new TslxcError(`${what} ${spec}: not found in the container's ${file}`, undefined, undefined, { exitCode: 125 });
}
