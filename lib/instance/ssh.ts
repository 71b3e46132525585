import os from 'node:os';
import type { Client, ClientChannel, ConnectConfig, PseudoTtyOptions } from 'ssh2';
import { TslxcError, errorText } from '../errors.js';
import { loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { requireInstance } from '../state/runtime.js';
import { instanceState } from './status.js';
import { sleep } from '../util/fs.js';
import { expandInstance } from '../profile/expand.js';
import { ensureKeypair } from '../ssh/keys.js';
import { changedKeyError, checkHostKey, forgetHostKey, knownKey, rememberHostKey, updateAddress, type HostIdentity } from '../ssh/known-hosts.js';
import { startForwards, type LocalForward } from '../ssh/forward.js';
import { blobType, fingerprintOf } from '../ssh/pubkey.js';

/**
 * `tslxc ssh`: ssh2's client to the container's sshd over its IPv4 address on a managed network
 * (from the network's DHCP leases, as `list` and `wait --ip` learn it), logged in with tslxc's own
 * key. Unlike `exec`, this goes through the container's sshd: its PAM session, its login shell,
 * its idea of the user — what an SSH user of the box gets.
 */
export interface SshOptions {
  user?: string;
  /** empty: a login shell */
  command?: string[];
  /** -t true, -T false, unset: a pty for a shell on a terminal only (OpenSSH's rule) */
  tty?: boolean;
  forwards?: LocalForward[];
  /** -N: no session, only the forwards (until interrupted) */
  noCommand?: boolean;
  forgetHostKey?: boolean;
  port?: number;
  /** seconds to wait for the connection (default 10) */
  timeout?: number;
}

/** A container booting right now gets this long to get an address and start sshd. */
const BOOT_GRACE_MS = 30_000;

interface Target {
  id: HostIdentity;
  /** when init started (ms), to tell a booting container from a broken one */
  startedAt: number;
}

/** The running container's address, waiting a little for one that is still booting. */
async function resolveTarget(ctx: Context, name: string): Promise<Target> {
  requireInstance(ctx.paths, name);
  for (;;) {
    const cfg = loadConfig(ctx.paths, name);
    const st = await instanceState(ctx, cfg);
    if (st.status === 'Frozen') throw new TslxcError(`Container "${name}" is paused`, undefined, `resume it with "tslxc resume ${name}"`);
    if (st.status !== 'Running' || !st.startedAt) throw new TslxcError(`Container "${name}" is not running`, undefined, `start it with "tslxc start ${name}"`);
    const startedAt = Date.parse(st.startedAt);
    if (st.ipv4.length > 0) return { id: { name, created: cfg.created_at, address: st.ipv4[0] }, startedAt };
    const hasNic = Object.values(expandInstance(ctx.paths, cfg).devices).some((d) => d.type === 'nic');
    if (!hasNic) {
      throw new TslxcError(
        `Container "${name}" has no IPv4 address`,
        'it has no nic',
        `give it one on a managed network: tslxc config device add ${name} eth0 nic network=NETWORK, then restart it`,
      );
    }
    if (Date.now() - startedAt > BOOT_GRACE_MS) {
      throw new TslxcError(
        `Container "${name}" has no IPv4 address`,
        'it has no nic on a managed network, or its DHCP client did not get a lease',
        `give it one (tslxc config device add ${name} eth0 nic network=NETWORK) or check its network inside (tslxc exec ${name} -- ip addr)`,
      );
    }
    await sleep(200);
  }
}

const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** The stored key's type first, so a server with several host keys shows the one we know. */
function hostKeyOrder(knownType?: string): string[] {
  if (!knownType) return HOST_KEY_ALGORITHMS;
  const first = knownType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [knownType];
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

interface Connected {
  client: Client;
  learnt?: string;
}

async function connectOnce(ctx: Context, t: Target, opts: SshOptions, privateKey: string): Promise<Connected> {
  // ssh2 is large and stays outside the CLI bundles (scripts/bundle.mjs): loaded when a connection is made.
  const { Client } = (await import('ssh2')).default;
  const client = new Client();
  const { id } = t;
  const user = opts.user ?? 'root';
  let refusal: TslxcError | undefined;
  let learnt: string | undefined;
  const config: ConnectConfig = {
    host: id.address,
    port: opts.port ?? 22,
    username: user,
    privateKey,
    readyTimeout: (opts.timeout ?? 10) * 1000,
    keepaliveInterval: 15_000,
    algorithms: { serverHostKey: hostKeyOrder(knownKey(ctx.paths, id)?.type) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
    hostVerifier: ((key: Buffer, verify: (ok: boolean) => void) => {
      const verdict = checkHostKey(ctx.paths, id, key);
      if (verdict.status === 'changed') {
        refusal = changedKeyError(id, key, verdict.stored);
        verify(false);
        return;
      }
      if (verdict.status === 'known') {
        updateAddress(ctx.paths, id).then(
          () => verify(true),
          () => verify(true),
        );
        return;
      }
      // First contact: trust and remember (OpenSSH's accept-new), and say so.
      learnt = `${blobType(key)} ${fingerprintOf(key)}`;
      rememberHostKey(ctx.paths, id, key).then(
        () => verify(true),
        (err) => {
          refusal = err instanceof TslxcError ? err : new TslxcError(`Cannot record the host key of "${id.name}"`, errorText(err));
          verify(false);
        },
      );
    }) as ConnectConfig['hostVerifier'],
  };
  return new Promise<Connected>((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve({ client, learnt });
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(refusal ?? connectError(id, user, opts.port ?? 22, err));
    });
    client.once('close', () => {
      if (settled) return;
      settled = true;
      reject(refusal ?? new TslxcError(`Cannot connect to "${id.name}" (${id.address})`, 'the connection was closed during the handshake'));
    });
    client.connect(config);
  });
}

class Retryable extends TslxcError {}

function connectError(id: HostIdentity, user: string, port: number, err: Error & { level?: string; code?: string }): TslxcError {
  const where = `"${id.name}" (${id.address}:${port})`;
  if (err.level === 'client-authentication') {
    return new TslxcError(
      `Cannot log in to ${where} as ${user}`,
      "sshd refused tslxc's key",
      user === 'root'
        ? `the container was not made with tslxc's key; add it: tslxc ssh-key add ${id.name} --user root STATE/ssh/id_ed25519.pub`
        : `authorize it: tslxc ssh-key add ${id.name} --user ${user} FILE.pub, or log in as root`,
    );
  }
  if (err.code === 'ECONNREFUSED')
    return new Retryable(`Cannot connect to ${where}`, 'nothing listens there (is sshd running?)', `check it: tslxc exec ${id.name} -- systemctl status ssh`);
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH')
    return new Retryable(`Cannot connect to ${where}`, 'no route to it', `check its network: tslxc exec ${id.name} -- ip addr`);
  if (err.level === 'client-timeout' || err.code === 'ETIMEDOUT')
    return new TslxcError(`Cannot connect to ${where}`, 'sshd did not answer in time', `check it: tslxc exec ${id.name} -- systemctl status ssh`);
  return new TslxcError(`Cannot connect to ${where}`, errorText(err));
}

/** Connect, retrying "refused" while the container is still booting (sshd not up yet). */
export async function connect(ctx: Context, name: string, opts: SshOptions = {}): Promise<{ client: Client; id: HostIdentity }> {
  if (opts.forgetHostKey) {
    const n = await forgetHostKey(ctx.paths, name);
    process.stderr.write(n ? `Forgot the host key of "${name}".\n` : `No host key of "${name}" was known.\n`);
  }
  const t = await resolveTarget(ctx, name);
  const { privateKey } = await ensureKeypair(ctx.paths);
  // While the container is booting sshd may not listen yet: "refused" is retried, within the
  // boot grace and the --timeout.
  const giveUp = Math.min(t.startedAt + BOOT_GRACE_MS, Date.now() + (opts.timeout ?? 10) * 1000);
  for (;;) {
    try {
      const c = await connectOnce(ctx, t, opts, privateKey);
      if (c.learnt) process.stderr.write(`Learnt the host key of "${name}" (${t.id.address}): ${c.learnt}\n`);
      return { client: c.client, id: t.id };
    } catch (err) {
      if (!(err instanceof Retryable) || Date.now() > giveUp) throw err;
      await sleep(250);
    }
  }
}

/** What OpenSSH's server runs: one string. Several words are quoted one by one (as exec takes them); a single one is a shell command line. */
export function remoteCommand(words: string[]): string {
  if (words.length === 1) return words[0];
  return words.map((w) => (/^[A-Za-z0-9_\-+=.,/:@%^]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** OpenSSH's exit code rules: the command's status, 128+n for a signal, 255 when none came back. */
export function exitCodeOf(code: number | null | undefined, signal: string | undefined): number {
  if (typeof code === 'number') return code;
  if (signal) {
    const n = (os.constants.signals as Record<string, number>)[signal.startsWith('SIG') ? signal : `SIG${signal}`];
    return 128 + (n ?? 0);
  }
  return 255;
}

/**
 * Run a session (shell or command) or only the forwards; resolves with the exit code. tslxc's own
 * failures exit 255, as OpenSSH's do, so they are told apart from the command's codes.
 */
export async function sshInstance(ctx: Context, name: string, opts: SshOptions = {}): Promise<number> {
  try {
    return await sshSession(ctx, name, opts);
  } catch (err) {
    if (err instanceof TslxcError && err.exitCode === 1) throw new TslxcError(err.message, undefined, undefined, { exitCode: 255, cause: err });
    throw err;
  }
}

async function sshSession(ctx: Context, name: string, opts: SshOptions): Promise<number> {
  const command = opts.command ?? [];
  if (opts.noCommand && command.length) throw new TslxcError('-N runs no command', `"${command.join(' ')}" was given too`, 'drop -N or the command');
  const { client } = await connect(ctx, name, opts);
  let forwards: Awaited<ReturnType<typeof startForwards>> | undefined;
  try {
    if (opts.forwards?.length) forwards = await startForwards(client, opts.forwards, (l) => process.stderr.write(`${l}\n`));
    if (opts.noCommand) return await waitForInterrupt(client);
    return await runSession(client, command, opts.tty ?? (command.length === 0 && !!process.stdin.isTTY));
  } finally {
    await forwards?.close();
    client.end();
  }
}

function waitForInterrupt(client: Client): Promise<number> {
  return new Promise((resolve) => {
    const done = (code: number) => () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    const onInt = done(0);
    const onTerm = done(0);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    client.once('close', done(255));
  });
}

function runSession(client: Client, command: string[], tty: boolean): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const pty: PseudoTtyOptions | false = tty ? { term: process.env.TERM || 'xterm', rows: stdout.rows || 24, cols: stdout.columns || 80 } : false;
  return new Promise<number>((resolve, reject) => {
    const onChannel = (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        reject(new TslxcError('The SSH server refused the session', err.message));
        return;
      }
      const raw = tty && stdin.isTTY;
      if (raw) stdin.setRawMode(true);
      const onResize = () => ch.setWindow(stdout.rows || 24, stdout.columns || 80, 0, 0);
      if (tty && stdout.isTTY) stdout.on('resize', onResize);
      // Killed or hung up while the session runs: end it cleanly, so the terminal is restored.
      let interrupted = false;
      const onSignal = () => {
        interrupted = true;
        ch.close();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGHUP', onSignal);
      let code: number | undefined;
      ch.on('exit', (c: number | null, signal?: string) => {
        code = exitCodeOf(c, signal ?? undefined);
      });
      ch.pipe(stdout, { end: false });
      ch.stderr.pipe(process.stderr, { end: false });
      stdin.pipe(ch);
      ch.on('close', () => {
        stdin.unpipe(ch);
        if (raw) stdin.setRawMode(false);
        stdout.off('resize', onResize);
        process.off('SIGTERM', onSignal);
        process.off('SIGHUP', onSignal);
        // The loop must be free to end: stop reading our stdin.
        stdin.pause();
        stdin.destroy();
        resolve(interrupted ? 255 : (code ?? 255));
      });
    };
    if (command.length === 0) {
      if (pty) client.shell(pty, onChannel);
      else client.shell(false, onChannel);
    } else client.exec(remoteCommand(command), { pty }, onChannel);
  });
}
