import net from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection } from 'ssh2';
import { errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { authorize, verifySignature } from './auth.js';
import { loadOrCreateHostKey } from './hostkey.js';
import { SessionLog, sessionsLogFile } from './log.js';
import { RunningSession, type SessionOwner } from './session.js';
import { DEFAULT_THROTTLE, Throttle, type ThrottleOptions } from './throttle.js';
import { getGatewayUser, loginTarget, parseLoginName } from './users.js';

/**
 * The SSH gateway: an SSH server (ssh2's) that puts users straight into their containers, with no
 * sshd inside. Public keys only, from users.yaml (re-read at every login); no forwarding of any
 * kind, no agent, no X11, no subsystem but sftp: a session can only ever run something inside the
 * container its login names, so no user reaches the host or another user's container.
 */

export interface GatewayOptions {
  host: string;
  port: number;
  throttle?: Partial<ThrottleOptions>;
  /** Where log lines go (the CLI: stderr). */
  info?: (line: string) => void;
}

/** As OpenSSH's MaxAuthTries and MaxSessions and LoginGraceTime. */
const MAX_AUTH_TRIES = 6;
const MAX_SESSIONS_PER_CONNECTION = 10;
const LOGIN_GRACE_MS = 60_000;
/** Connections not logged in yet, per address and in all (as OpenSSH's MaxStartups; generous per address: a classroom shares one NAT address): beyond, new ones are dropped. */
const MAX_PENDING_PER_ADDRESS = 64;
const MAX_PENDING = 256;

export interface Gateway {
  address: { host: string; port: number };
  fingerprint: string;
  /** Stops accepting, hangs up every session, waits (up to timeoutMs) for them to end. */
  close(timeoutMs?: number): Promise<void>;
}

export async function startGateway(ctx: Context, opts: GatewayOptions): Promise<Gateway> {
  const info = opts.info ?? (() => {});
  const hostKey = loadOrCreateHostKey(ctx.paths);
  const log = new SessionLog(sessionsLogFile(ctx.paths));
  const throttle = new Throttle({ ...DEFAULT_THROTTLE, ...opts.throttle });
  const sessions = new Set<RunningSession>();
  const connections = new Set<Connection>();
  const pruner = setInterval(() => throttle.prune(), 60_000).unref();

  // By the client's address:port, which names one live TCP connection to this listener.
  const pendingSettlers = new Map<string, () => void>();
  const pending = new Map<string, number>();
  let pendingTotal = 0;
  const release = (addr: string) => {
    pendingTotal--;
    const n = (pending.get(addr) ?? 1) - 1;
    if (n > 0) pending.set(addr, n);
    else pending.delete(addr);
  };

  const ssh = new ssh2.Server({ hostKeys: [hostKey.privateKey], ident: 'tslxc-gateway' }, (client, meta) => {
    connections.add(client);
    const source = `${meta.ip}:${meta.port}`;
    const address = meta.ip;
    let owner: SessionOwner | undefined;
    let failures = 0;
    const grace = setTimeout(() => {
      info(`${source}: no login within ${LOGIN_GRACE_MS / 1000} s, disconnected`);
      client.end();
    }, LOGIN_GRACE_MS);
    const mine = new Set<RunningSession>();

    const fail = (auth: AuthContext, reason: string) => {
      failures++;
      const t = throttle.failure(address);
      info(
        `${source} ${auth.username.slice(0, 64)}: login refused: ${reason}${t.banned ? `; ${address} refused for ${Math.round(throttle.opts.banMs / 1000)} s` : ''}`,
      );
      if (t.banned || failures >= MAX_AUTH_TRIES) {
        auth.reject();
        client.end();
        return;
      }
      setTimeout(() => auth.reject(['publickey']), t.delayMs);
    };

    client.on('authentication', (auth) => {
      if (auth.method === 'none') return auth.reject(['publickey']);
      if (auth.method !== 'publickey') return fail(auth, `method ${auth.method} is not offered`);
      let verdict;
      try {
        verdict = authorize(ctx.paths, auth.username, auth.key.data);
      } catch (err) {
        return fail(auth, `users file unreadable: ${errorText(err)}`);
      }
      if (!verdict.ok) return fail(auth, verdict.reason);
      // Without a signature the client only asks whether this key would do; it signs next.
      if (!auth.signature) return auth.accept();
      if (!auth.blob || !verifySignature(verdict.key, auth.blob, auth.signature, auth.hashAlgo)) return fail(auth, 'bad signature');
      owner = { user: verdict.user.name, login: auth.username, container: verdict.container, source, local: `${opts.host} ${gatewayPort()}` };
      throttle.success(address);
      clearTimeout(grace);
      pendingSettlers.get(source)?.();
      info(`${source} ${auth.username}: logged in (user ${verdict.user.name}, container ${verdict.container})`);
      auth.accept();
    });

    client.on('session', (accept, reject) => {
      if (!owner || mine.size >= MAX_SESSIONS_PER_CONNECTION) return reject();
      const who = owner;
      const rs = new RunningSession(accept(), who, {
        ctx,
        log,
        info,
        stillAllowed: () => {
          const login = parseLoginName(who.login);
          const user = getGatewayUser(ctx.paths, who.user);
          return !!login && !!user && loginTarget(user, login) === who.container;
        },
        done: (s) => {
          mine.delete(s);
          sessions.delete(s);
        },
      });
      mine.add(rs);
      sessions.add(rs);
    });
    // Forwarding of any kind would reach beyond the container: refused.
    client.on('tcpip', (_a, reject) => reject());
    client.on('openssh.streamlocal', (_a, reject) => reject());
    client.on('request', (_a, reject, name) => {
      info(`${source}: refused global request ${name}`);
      reject?.();
    });
    client.on('error', (err) => info(`${source}: ${errorText(err)}`));
    client.on('close', () => {
      clearTimeout(grace);
      connections.delete(client);
      for (const s of mine) {
        if (s.running) continue; // ends by itself: its channel closed, the command gets SIGHUP
        mine.delete(s);
        sessions.delete(s);
      }
    });
  });
  ssh.on('error', (err: Error) => info(`ssh: ${errorText(err)}`));

  // A refused address is dropped before a byte of SSH: no handshake, no key exchange to pay for.
  const tcp = net.createServer((socket) => {
    const addr = socket.remoteAddress ?? '';
    if (throttle.bannedFor(addr) > 0 || pendingTotal >= MAX_PENDING || (pending.get(addr) ?? 0) >= MAX_PENDING_PER_ADDRESS) {
      socket.destroy();
      return;
    }
    // Counted until logged in or gone.
    pendingTotal++;
    pending.set(addr, (pending.get(addr) ?? 0) + 1);
    let counted = true;
    const key = `${addr}:${socket.remotePort}`;
    const settle = () => {
      if (counted) release(addr);
      counted = false;
      pendingSettlers.delete(key);
    };
    socket.once('close', settle);
    pendingSettlers.set(key, settle);
    socket.on('error', () => {});
    // Small packets (a command's output, then its exit status, EOF and close) must not wait for
    // the client's delayed ACK (Nagle's algorithm would hold each of them until it came).
    socket.setNoDelay(true);
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(opts.port, opts.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  tcp.on('error', (err) => info(`listen: ${errorText(err)}`));
  const gatewayPort = () => (tcp.address() as net.AddressInfo).port;

  return {
    address: { host: opts.host, port: gatewayPort() },
    fingerprint: hostKey.fingerprint,
    async close(timeoutMs = 5_000) {
      clearInterval(pruner);
      tcp.close();
      for (const s of sessions) s.hangup();
      const deadline = Date.now() + timeoutMs;
      while ([...sessions].some((s) => s.running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const s of sessions) if (s.running) s.kill();
      await new Promise((r) => setTimeout(r, 100));
      for (const c of connections) c.end();
      log.close();
    },
  };
}
