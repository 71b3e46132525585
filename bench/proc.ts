import { spawn } from 'node:child_process';

/**
 * Running and timing commands. Every command is spawned asynchronously so the event loop stays
 * free to notice SIGINT/SIGTERM: a signal sets `interrupted`, the current command is allowed to
 * finish (or is killed by its own PID when it overruns its timeout), and the next call throws
 * Interrupted so the caller's finally blocks clean up.
 */

export class Interrupted extends Error {
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
  }
}

let interruptedBy: string | undefined;
const children = new Set<number>();

export function interrupt(signal: string): void {
  interruptedBy ??= signal;
}

export function isInterrupted(): boolean {
  return interruptedBy !== undefined;
}

export function checkInterrupted(): void {
  if (interruptedBy) throw new Interrupted(interruptedBy);
}

/** PIDs of the commands this process is running right now (all of them started by us). */
export function runningChildren(): number[] {
  return [...children];
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  timedOut: boolean;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Run even after an interrupt (cleanup commands). */
  duringCleanup?: boolean;
  /** Written to the command's stdin (closed after it); stdin is /dev/null without it. */
  input?: string;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!opts.duringCleanup) checkInterrupted();
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const pid = child.pid;
    if (pid !== undefined) children.add(pid);
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }, opts.timeoutMs ?? 120_000);
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      if (pid !== undefined) children.delete(pid);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      if (pid !== undefined) children.delete(pid);
      resolve({ code: code ?? 128, signal, stdout, stderr, ms, timedOut });
    });
  });
}

/** Like run() but throws with the command's stderr unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exited ${r.code}${r.signal ? ` (${r.signal})` : ''}`;
    throw new Error(`${cmd} ${args.join(' ')} ${why}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A pause that notices an interrupt as soon as it ends. */
export async function pause(ms: number): Promise<void> {
  await sleep(ms);
  checkInterrupted();
}

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
