import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';
import type { ServerChannel, Session } from 'ssh2';
import { errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { attachArgs } from '../instance/exec.js';
import { helperPath } from '../state/helper.js';
import { liveness } from '../state/runtime.js';
import { isAlive, type ProcessRef } from '../util/proc.js';
import type { SessionLog, SessionRecord } from './log.js';

/**
 * One SSH session channel: its pty, environment and signal requests, then exactly one of shell,
 * exec or the sftp subsystem, run inside the user's container through the native helper's attach.
 * Without a pty the command gets pipes; with one, it gets a pty of the container's devpts that the
 * helper relays, with window sizes and signals on a control pipe (fd 3), since the gateway has no
 * terminal to hand over. Both go through the container's exec server, or through the helper's
 * direct path when that refuses (a container at its process limit): the same code as exec.
 */

/** Who the session belongs to, decided at authentication. */
export interface SessionOwner {
  user: string;
  login: string;
  container: string;
  /** "ADDRESS:PORT" */
  source: string;
  /** The gateway's own "ADDRESS PORT", for SSH_CONNECTION. */
  local: string;
}

export interface SessionHooks {
  ctx: Context;
  log: SessionLog;
  info: (line: string) => void;
  /** Still allowed? (users.yaml is re-read for every new session on an open connection.) */
  stillAllowed: () => boolean;
  /** Called once when the command ended and the channel was closed. */
  done: (s: RunningSession) => void;
}

/** A login shell as `tslxc shell` gives: su -l where the image has su, else a login sh. */
const LOGIN_SHELL = ['/bin/sh', '-c', 'if command -v su >/dev/null 2>&1; then exec su -l root; else cd; exec /bin/sh -l; fi'];

/** Where images keep OpenSSH's sftp-server (Debian, Fedora/Alpine, Arch). */
const SFTP_SERVERS = [
  '/usr/lib/openssh/sftp-server',
  '/usr/libexec/openssh/sftp-server',
  '/usr/libexec/sftp-server',
  '/usr/lib/ssh/sftp-server',
  '/usr/lib/sftp-server',
];
const SFTP_COMMAND = [
  '/bin/sh',
  '-c',
  `for p in ${SFTP_SERVERS.join(' ')}; do [ -x "$p" ] && exec "$p"; done; echo "tslxc gateway: this container has no sftp-server (install openssh-sftp-server in it, or use scp -O)" >&2; exit 127`,
];

/** Signals a client may send (RFC 4254 6.9 names) that reach the command without a pty too. */
const FORWARDED = new Set(['INT', 'TERM', 'HUP', 'QUIT', 'USR1', 'USR2']);
const SIGNAL_NAMES = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/** Environment a client may set, as Debian's sshd AcceptEnv. */
const ACCEPTED_ENV = /^(LANG|LC_[A-Z]+|TZ)$/;
const MAX_ENV = 32;

/** How long a command may outlive its client after SIGHUP before it is killed (pty sessions). */
const HANGUP_GRACE_MS = 10_000;

interface PtyRequest {
  term: string;
  rows: number;
  cols: number;
}

export class RunningSession {
  private pty?: PtyRequest;
  private readonly env: Record<string, string> = {};
  private child?: ChildProcess;
  private control?: Writable;
  private started = false;
  private record?: SessionRecord;
  private ended = false;

  constructor(
    private readonly session: Session,
    readonly owner: SessionOwner,
    private readonly hooks: SessionHooks,
  ) {
    session.on('pty', (accept, reject, info) => {
      const term = /^[A-Za-z0-9._+-]{1,64}$/.test(info.term) ? info.term : 'vt100';
      if (this.started) return reject?.();
      this.pty = { term, rows: clampDim(info.rows, 24), cols: clampDim(info.cols, 80) };
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (this.pty) {
        this.pty.rows = clampDim(info.rows, this.pty.rows);
        this.pty.cols = clampDim(info.cols, this.pty.cols);
        this.control?.write(`w ${this.pty.rows} ${this.pty.cols}\n`);
      }
      accept?.();
    });
    session.on('env', (accept, reject, info) => {
      const ok = ACCEPTED_ENV.test(info.key) && !/[\0\n]/.test(info.val) && info.val.length <= 256 && Object.keys(this.env).length < MAX_ENV;
      if (!ok || this.started) return reject?.();
      this.env[info.key] = info.val;
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      this.signal(String(info.name).replace(/^SIG/, ''));
      accept?.();
    });
    // Nothing that could reach beyond the container: no X11, no agent (ssh2 refuses unhandled
    // requests too; these say so in the log).
    // A channel closed before it ran anything no longer counts against the connection's sessions.
    session.once('close', () => {
      if (this.started || this.ended) return;
      this.ended = true;
      hooks.done(this);
    });
    session.on('x11', (_a, reject) => reject?.());
    session.on('auth-agent', (_a, reject) => reject?.());
    session.on('shell', (accept, reject) => this.start('shell', LOGIN_SHELL, accept, reject));
    session.on('exec', (accept, reject, info) => this.start('exec', ['/bin/sh', '-c', info.command], accept, reject, info.command));
    session.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') {
        hooks.info(`${owner.source} ${owner.login}: refused subsystem "${String(info.name).slice(0, 40)}"`);
        return reject?.();
      }
      this.start('sftp', SFTP_COMMAND, accept, reject);
    });
  }

  /** A command was started and has not ended yet. */
  get running(): boolean {
    return this.started && !this.ended;
  }

  /** Ends the command as a client's disconnect would (SIGHUP), for a gateway shutdown. */
  hangup(): void {
    this.signal('HUP');
    this.child?.stdin?.end();
  }

  /** For a shutdown that waited long enough: a pty's command gets SIGKILL, a plain one loses its relay. */
  kill(): void {
    if (this.control) this.signal('KILL');
    else this.child?.kill('SIGKILL');
  }

  private signal(name: string): void {
    const child = this.child;
    if (!child || child.exitCode !== null || !SIGNAL_NAMES.has(name)) return;
    const num = os.constants.signals[`SIG${name}` as NodeJS.Signals];
    if (this.control) this.control.write(`s ${num}\n`);
    else if (FORWARDED.has(name)) child.kill(`SIG${name}` as NodeJS.Signals); // the helper passes it on
  }

  private start(kind: SessionRecord['kind'], argv: string[], accept: () => ServerChannel, reject: (() => void) | undefined, command?: string): void {
    if (this.started || !this.hooks.stillAllowed()) return reject?.();
    this.started = true;
    const stream = accept();
    // A write racing the client's close must not take the gateway down.
    stream.on('error', (err: Error) => this.hooks.info(`${this.owner.source} ${this.owner.login}: channel: ${errorText(err)}`));
    stream.stderr.on('error', () => {});
    const pty = kind === 'sftp' ? undefined : this.pty;
    this.record = {
      user: this.owner.user,
      login: this.owner.login,
      source: this.owner.source,
      container: this.owner.container,
      kind,
      ...(command !== undefined ? { command: command.slice(0, 1000) } : {}),
      pty: !!pty,
      start: new Date().toISOString(),
      end: '',
      exit: null,
    };
    void this.run(stream, argv, pty);
  }

  private async run(stream: ServerChannel, argv: string[], pty: PtyRequest | undefined): Promise<void> {
    const nl = pty ? '\r\n' : '\n';
    const [srcAddr, srcPort] = splitSource(this.owner.source);
    const env: Record<string, string> = {
      ...this.env,
      SSH_CLIENT: `${srcAddr} ${srcPort} ${this.owner.local.split(' ')[1]}`,
      SSH_CONNECTION: `${srcAddr} ${srcPort} ${this.owner.local}`,
    };
    let args: string[];
    try {
      args = await attachArgs(this.hooks.ctx, this.owner.container, argv, {
        env,
        relayedPty: pty ? { rows: pty.rows, cols: pty.cols, controlFd: 3 } : undefined,
      });
    } catch (err) {
      stream.stderr.write(`tslxc gateway: ${errorText(err)}${nl}`);
      return this.finish(stream, 1, 'container not available');
    }
    if (stream.destroyed || this.ended) return this.finish(stream, null, 'client left before the command started');
    const init = liveness(this.hooks.ctx.paths, this.owner.container).files.init;

    // The helper reads only TERM from its environment; nothing of the gateway's reaches the container.
    const child = spawn(helperPath(), args, {
      stdio: ['pipe', 'pipe', 'pipe', pty ? 'pipe' : 'ignore'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(pty ? { TERM: pty.term } : {}) },
    });
    this.child = child;
    this.control = pty ? (child.stdio[3] as Writable) : undefined;
    this.control?.on('error', () => {});
    child.stdin!.on('error', () => {}); // EPIPE once the command is gone: its input no longer matters
    stream.pipe(child.stdin!);
    child.stdout!.pipe(stream, { end: false });
    child.stderr!.pipe(stream.stderr, { end: false });

    let clientGone = false;
    let killTimer: NodeJS.Timeout | undefined;
    stream.on('close', () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      clientGone = true;
      this.hangup();
      if (this.control) killTimer = setTimeout(() => this.signal('KILL'), HANGUP_GRACE_MS);
    });

    const { code, error } = await new Promise<{ code: number; error?: Error }>((resolve) => {
      child.on('error', (err) => resolve({ code: 255, error: err }));
      child.on('close', (c, sig) => resolve({ code: c ?? 128 + (sig ? os.constants.signals[sig] : 0) }));
    });
    clearTimeout(killTimer);
    this.control?.end();
    // What the client sends from now on must not reach a process the command left behind.
    stream.unpipe(child.stdin!);
    child.stdin!.destroy();
    if (error) {
      stream.stderr.write(`tslxc gateway: cannot run the native helper: ${error.message}${nl}`);
      return this.finish(stream, 255, 'helper failed');
    }
    if (clientGone) return this.finish(stream, code, 'client disconnected');
    if (await this.containerEnded(init, code)) {
      stream.stderr.write(`${nl}tslxc gateway: container "${this.owner.container}" stopped; this session ended${nl}`);
      return this.finish(stream, code === 0 ? 1 : code, 'container stopped');
    }
    this.finish(stream, code);
  }

  /**
   * Whether the container's init (the one the command ran under) is gone. A command killed with
   * its container (a status of 125, the helper's own, or 128+signal) may be reported a moment
   * before init is: such a status waits up to half a second for init's end.
   */
  private async containerEnded(init: ProcessRef | undefined, code: number): Promise<boolean> {
    if (initEnding(init)) return true;
    if (code < 125) return false;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (initEnding(init)) return true;
    }
    return false;
  }

  private finish(stream: ServerChannel, exit: number | null, note?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (exit !== null && !stream.destroyed) {
      try {
        stream.exit(exit);
        stream.end();
      } catch {
        /* the client closed the channel in the meantime */
      }
    }
    if (this.record) {
      this.record.end = new Date().toISOString();
      this.record.exit = exit;
      if (note) this.record.note = note;
      try {
        this.hooks.log.write(this.record);
      } catch (err) {
        this.hooks.info(`cannot write the sessions log: ${errorText(err)}`);
      }
      this.hooks.info(
        `${this.owner.source} ${this.owner.login} → ${this.owner.container}: ${this.record.kind} ended, exit ${exit ?? '-'}${note ? ` (${note})` : ''}`,
      );
    }
    this.hooks.done(this);
  }
}

/** PF_EXITING in /proc/PID/stat's flags: set as a task starts to exit. */
const PF_EXITING = 0x4;

/**
 * Init is gone, a zombie, or exiting. A pid namespace's init killed with its container stays
 * un-zombied until every other process of the namespace is reaped (the kernel's
 * zap_pid_ns_processes), which can take a while: its exiting flag says it at once.
 */
function initEnding(init: ProcessRef | undefined): boolean {
  if (!init || !isAlive(init)) return true;
  try {
    const stat = fs.readFileSync(`/proc/${init.pid}/stat`, 'utf8');
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
    return (flags & PF_EXITING) !== 0;
  } catch {
    return true;
  }
}

function clampDim(n: unknown, def: number): number {
  const v = Number(n);
  return Number.isInteger(v) && v > 0 && v <= 10_000 ? v : def;
}

function splitSource(source: string): [string, string] {
  const i = source.lastIndexOf(':');
  return [source.slice(0, i), source.slice(i + 1)];
}
