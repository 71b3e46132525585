import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, PseudoTtyOptions } from 'ssh2';
import { cliPath, type TestEnv } from '../../helpers/env.js';

/** A gateway run through the CLI as a child process, on 127.0.0.1 and a port the kernel picked. */
export interface GatewayProcess {
  port: number;
  pid: number;
  log: () => string;
  /** SIGTERM by PID, then wait for its exit (SIGKILL after 10 s). */
  stop: () => Promise<number | null>;
}

export async function startGatewayProcess(env: TestEnv, extra: string[] = []): Promise<GatewayProcess> {
  const child: ChildProcess = spawn(process.execPath, [cliPath, 'gateway', '--listen', '127.0.0.1:0', ...extra], {
    env: env.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (d) => (text += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${text}`)), 20_000);
    const check = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => reject(new Error(`gateway exited ${code}: ${text}`)));
  });
  return {
    port,
    pid: child.pid!,
    log: () => text,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      process.kill(child.pid!, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** An ed25519 key pair made with ssh-keygen in dir; returns the private key's path. */
export function makeKey(dir: string, name: string): string {
  const file = path.join(dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return file;
}

/** OpenSSH client options against the gateway: this key only, a private known_hosts. */
export function sshOptions(gw: { port: number }, key: string, knownHosts: string, strict = 'accept-new'): string[] {
  return [
    '-p',
    String(gw.port),
    '-i',
    key,
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    `StrictHostKeyChecking=${strict}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'HostKeyAlias=tslxc-test-gateway',
    '-o',
    'ConnectTimeout=20',
    '-F',
    '/dev/null',
  ];
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs OpenSSH's ssh (or scp, sftp) asynchronously. */
export function runTool(tool: string, args: string[], input?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 255, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** An ssh2 client connected (and authenticated) to the gateway. */
export function connect(gw: { port: number }, username: string, key: string, extra: Partial<ConnectConfig> = {}): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c));
    // Before ready: the connection failed. After: the test sees it on its channels; an 'error'
    // with no listener would crash the worker before the after.always hooks clean up.
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port: gw.port, username, privateKey: fs.readFileSync(key), hostVerifier: () => true, readyTimeout: 30_000, ...extra });
  });
}

export interface ChannelResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Collects a channel's output until it closes. */
export function collect(ch: ClientChannel, onData?: (all: string, ch: ClientChannel) => void): Promise<ChannelResult> {
  return new Promise((resolve) => {
    const r: ChannelResult = { code: null, stdout: '', stderr: '' };
    ch.on('data', (d: Buffer) => {
      r.stdout += d.toString();
      onData?.(r.stdout, ch);
    });
    ch.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
    ch.on('exit', (code: number | null, signal?: string) => {
      r.code = code;
      if (signal) r.signal = signal;
    });
    ch.on('close', () => resolve(r));
  });
}

export function exec(c: ssh2.Client, command: string, opts: { pty?: PseudoTtyOptions | boolean } = {}): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.exec(command, opts.pty ? { pty: opts.pty } : {}, (err, ch) => (err ? reject(err) : resolve(ch))));
}

export function shell(c: ssh2.Client, pty: PseudoTtyOptions | false): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch));
    if (pty === false) c.shell(false, cb);
    else c.shell(pty, cb);
  });
}

/** Resolves when text matches the channel's output so far (or rejects after timeoutMs). */
export function waitFor(read: () => string, re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      const m = re.exec(read());
      if (m) return resolve(m);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${re}: ${JSON.stringify(read().slice(-300))}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

export function writeFile(file: string, text: string): void {
  fs.writeFileSync(file, text);
}
