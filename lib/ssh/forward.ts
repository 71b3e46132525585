import net from 'node:net';
import type { Client } from 'ssh2';
import { TslxcError } from '../errors.js';

/**
 * `-L [bind_address:]port:host:hostport`, as OpenSSH reads it: a port on the host whose
 * connections are carried over the SSH connection and opened from inside the container to
 * host:hostport (so `host` is resolved and reached from the container: 127.0.0.1 is the
 * container's loopback). IPv6 addresses go in brackets. Without a bind address only 127.0.0.1
 * listens; `*` or an empty one listens on every address, as OpenSSH with GatewayPorts.
 */
export interface LocalForward {
  spec: string;
  /** '' for every address */
  bindAddress: string;
  bindPort: number;
  host: string;
  hostPort: number;
}

/** Split on ':' outside brackets, removing the brackets. */
function fields(spec: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i];
    if (c === '[') {
      const end = spec.indexOf(']', i);
      if (end < 0 || cur !== '') return undefined;
      cur = spec.slice(i + 1, end);
      i = end;
      if (i + 1 < spec.length && spec[i + 1] !== ':') return undefined;
    } else if (c === ':') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function port(s: string, spec: string, what: string): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new TslxcError(`Invalid forward "${spec}"`, `${what} "${s}" is not a port number (1-65535)`, 'use -L [bind:]port:host:hostport');
  return n;
}

export function parseLocalForward(spec: string): LocalForward {
  const f = fields(spec);
  if (!f || (f.length !== 3 && f.length !== 4)) {
    throw new TslxcError(`Invalid forward "${spec}"`, 'expected [bind_address:]port:host:hostport (IPv6 addresses in brackets)', 'e.g. -L 8080:127.0.0.1:80');
  }
  const [bind, p, host, hp] = f.length === 4 ? f : ['127.0.0.1', ...f];
  if (!host) throw new TslxcError(`Invalid forward "${spec}"`, 'the host to reach inside the container is empty', 'e.g. -L 8080:127.0.0.1:80');
  if (/[\s/]/.test(host) || /[\s/]/.test(bind))
    throw new TslxcError(`Invalid forward "${spec}"`, 'unix socket and slash-separated forms are not supported', 'use -L [bind:]port:host:hostport');
  return { spec, bindAddress: bind === '*' ? '' : bind, bindPort: port(p, spec, 'port'), host, hostPort: port(hp, spec, 'host port') };
}

export interface ForwardHandle {
  close(): Promise<void>;
}

/**
 * Listen on every forward's port (all or none: a port in use fails the command before the session
 * starts) and carry each accepted connection through the client.
 */
export async function startForwards(client: Client, forwards: LocalForward[], warn: (line: string) => void): Promise<ForwardHandle> {
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  };
  try {
    for (const fw of forwards) {
      const server = net.createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        sock.pause();
        client.forwardOut(sock.remoteAddress ?? '127.0.0.1', sock.remotePort ?? 0, fw.host, fw.hostPort, (err, channel) => {
          if (err) {
            warn(`forward ${fw.spec}: the container could not open ${fw.host}:${fw.hostPort}: ${err.message}`);
            sock.destroy();
            return;
          }
          channel.on('error', () => sock.destroy());
          sock.on('close', () => channel.close());
          channel.on('close', () => sock.destroy());
          sock.pipe(channel).pipe(sock);
          sock.resume();
        });
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(
            new TslxcError(
              `Cannot forward ${fw.spec}`,
              `listening on ${fw.bindAddress || '*'}:${fw.bindPort} failed: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`,
              'pick another local port',
            ),
          ),
        );
        server.listen({ host: fw.bindAddress || undefined, port: fw.bindPort }, () => resolve());
      });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { close };
}
