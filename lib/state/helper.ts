import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TslxcError } from '../errors.js';
import { SAVED_CA_CERTS } from '../util/tls.js';

/**
 * The native helper (native/README.md is the contract). Its path can be overridden with
 * TSLXC_HELPER; by default it is the one built beside this package.
 */
export function helperPath(): string {
  const p = process.env.TSLXC_HELPER || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../native/build/tslxc-helper');
  if (!fs.existsSync(p)) {
    throw new TslxcError(
      'The native helper is missing',
      `${p} does not exist`,
      'run "npm ci" (or "npm run build") in the tslxc checkout; it needs gcc and make',
    );
  }
  return p;
}

export interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The helper's environment. A started monitor keeps it for its life and runs the network hooks
 * (node bin/tslxc.js ...) with it; they make no TLS connection, so node need not read
 * NODE_EXTRA_CA_CERTS (tens of ms per hook where a big bundle is set; see bin/tslxc).
 */
function helperEnv(): NodeJS.ProcessEnv {
  if (process.env.NODE_EXTRA_CA_CERTS === undefined && process.env[SAVED_CA_CERTS] === undefined) return process.env;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env[SAVED_CA_CERTS];
  return env;
}

export interface HelperIo {
  /** What the helper reads on stdin (none: /dev/null). */
  input?: string | Buffer | NodeJS.ReadableStream;
  /** Where its stdout goes (none: collected into the result). */
  output?: NodeJS.WritableStream;
}

/**
 * Run the helper to completion, capturing its output. A helper that fails exits with its one-line
 * error at once, perhaps before it read all of its stdin: the EPIPE our side then gets is expected
 * (unheard, it would end the CLI with a stack trace), and the exit status and the message say what
 * happened. An input or output stream that fails ends the run with its own error; the helper gets
 * SIGTERM first, so it never takes the part of its input it read for all of it (file --write
 * removes its temporary file then).
 */
export function runHelper(args: string[], io: HelperIo = {}): Promise<HelperResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), args, { stdio: [io.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: helperEnv() });
    let stdout = '';
    let stderr = '';
    let streamError: Error | undefined;
    const fail = (err: Error) => {
      streamError ??= err;
      child.kill('SIGTERM');
    };
    let flushed: Promise<void> = Promise.resolve();
    if (io.output) {
      const out = io.output;
      flushed = new Promise((r) => {
        out.once('finish', r);
        out.once('error', (err) => {
          fail(err);
          r();
        });
      });
      child.stdout!.pipe(out);
    } else child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const input = io.input;
    if (input !== undefined) {
      child.stdin!.on('error', () => {});
      if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin!.end(input);
      else {
        input.once('error', fail);
        input.pipe(child.stdin!);
      }
    }
    child.on('error', reject);
    child.on('close', async (code, signal) => {
      if (input !== undefined && typeof input !== 'string' && !Buffer.isBuffer(input)) {
        input.unpipe(child.stdin!);
        (input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      }
      await flushed;
      if (streamError) reject(streamError);
      else resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout, stderr });
    });
  });
}

/** The helper's one-line error, without its "tslxc-helper: " prefix. */
export function helperError(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines.reverse().find((l) => l.startsWith('tslxc-helper:')) ?? lines[0] ?? 'the native helper failed without a message';
  return last.replace(/^tslxc-helper:\s*/, '');
}

/**
 * Run the helper with the caller's terminal (attach, console) and return its exit code. While it
 * runs, signals the terminal sends to the whole process group reach the helper directly; the CLI
 * must not die of them, and a signal sent to the CLI alone is passed on.
 */
export function runHelperInteractive(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), args, { stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals) => () => {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    };
    // SIGINT and SIGQUIT come from the terminal to the whole foreground process group, so the
    // helper has them already: the CLI only must not die of them. Signals sent to the CLI alone
    // (SIGTERM from a supervisor, say) are passed on.
    const ignore = () => {};
    const handlers: Array<readonly [NodeJS.Signals, () => void]> = [
      ['SIGINT', ignore],
      ['SIGQUIT', ignore],
      ...(['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const),
    ];
    for (const [s, h] of handlers) process.on(s, h);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (signal ? (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[signal] ?? 1) : 1));
    });
  });
}
