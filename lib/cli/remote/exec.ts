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
 * `exec REMOTE:N -- CMD`: POST /1.0/instances/N/exec with wait-for-websocket, then the streams as
 * lxc relays them. With a pty: one socket both ways (stdin in raw mode), and window-resize on the
 * control socket; without: stdin, stdout and stderr each on its own. An empty text frame is the
 * end of a stream. The command's exit code is the finished operation's `return`.
 */
export async function remoteExec(remote: string, name: string, command: string[], opts: RemoteExecOptions): Promise<number> {
  return withRemote(remote, (s) => execOn(s, name, command, opts));
}

async function execOn(s: RemoteServer, name: string, command: string[], opts: RemoteExecOptions): Promise<number> {
  const { operationId } = await import('../../client/connection.js');
  const user = opts.user === undefined ? undefined : await idOf(s, name, 'user', opts.user);
  const group = opts.group === undefined ? undefined : await idOf(s, name, 'group', opts.group);
  const size = () => ({ width: process.stdout.columns || 80, height: process.stdout.rows || 24 });
  // A resize from here on is sent once the control socket is there.
  let resized = false;
  let control: WebSocket | undefined;
  const onResize = () => {
    resized = true;
    control?.send(JSON.stringify({ command: 'window-resize', args: { width: String(size().width), height: String(size().height) } }));
  };
  if (opts.tty) process.stdout.on('resize', onResize);
  const { envelope } = await s.call('POST', `${instancePath(name)}/exec`, {
    command,
    environment: { ...(opts.tty ? { TERM: process.env.TERM || 'xterm' } : {}), ...(opts.env ?? {}) },
    'wait-for-websocket': true,
    interactive: opts.tty,
    'record-output': false,
    ...(opts.tty ? size() : {}),
    ...(user !== undefined ? { user } : {}),
    ...(group !== undefined ? { group } : {}),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  const id = operationId(envelope);
  const fds = ((envelope.metadata as { metadata?: { fds?: Record<string, string> } })?.metadata?.fds ?? {}) as Record<string, string>;
  const open = async (fd: string): Promise<WebSocket | undefined> => (fds[fd] ? s.websocket(id, fds[fd]!) : undefined);
  // All at once: the server starts the command when they are all connected.
  const [controlSocket, ...streams] = await Promise.all(['control', ...(opts.tty ? ['0'] : ['0', '1', '2'])].map(open));
  control = controlSocket;
  if (resized) onResize();
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
  const stdin = process.stdin;
  const raw = opts.tty && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onData = (d: Buffer) => {
    if (input!.readyState === input!.OPEN) input!.send(d, { binary: true });
  };
  const onEnd = () => {
    if (!opts.tty && input!.readyState === input!.OPEN) input!.send('', { binary: false });
  };
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  try {
    const op = await s.wait(id);
    // What the command wrote before it ended is still on its way: wait for the streams' ends.
    await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 2000).unref())]);
    const code = Number((op.metadata as { return?: unknown } | null)?.return ?? 0);
    return Number.isInteger(code) ? code : 1;
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    // The command is over: what is left of stdin is not read (nor waited for).
    stdin.destroy();
    if (opts.tty) process.stdout.off('resize', onResize);
    for (const ws of [control, ...streams]) ws?.terminate();
  }
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
