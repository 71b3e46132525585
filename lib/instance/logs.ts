import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { containerDir } from '../state/paths.js';

/**
 * An instance's log files, as LXD keeps them in its log dir: today the recorded output of commands
 * run with `record-output` (exec_ID.stdout, exec_ID.stderr). They live in INSTANCE_DIR/logs, so
 * they move with a rename and go with a delete; a copy or a snapshot does not take them.
 */
export const logsDir = (ctx: Context, name: string) => path.join(containerDir(ctx.paths, name), 'logs');

/** The names a log may have: LXD's exec_ files (the operation's UUID), nothing that leaves the dir. */
const LOG_NAME = /^exec_[0-9a-f-]{1,64}\.(stdout|stderr)$/;

function requireLogName(file: string): string {
  if (!LOG_NAME.test(file)) throw new TslxcError(`Log file "${file.slice(0, 80)}" not found`, undefined, undefined, { kind: 'not-found' });
  return file;
}

export function listLogs(ctx: Context, name: string): string[] {
  loadConfig(ctx.paths, name);
  try {
    return fs
      .readdirSync(logsDir(ctx, name))
      .filter((f) => LOG_NAME.test(f))
      .sort();
  } catch {
    return [];
  }
}

/** The path of an existing log file of the instance, or a not-found error. */
export function logPath(ctx: Context, name: string, file: string): string {
  loadConfig(ctx.paths, name);
  const p = path.join(logsDir(ctx, name), requireLogName(file));
  if (!fs.existsSync(p)) throw new TslxcError(`Log file "${file}" not found`, undefined, undefined, { kind: 'not-found' });
  return p;
}

export function deleteLog(ctx: Context, name: string, file: string): void {
  fs.rmSync(logPath(ctx, name, file));
}

/** Opens the two files a recorded command writes to (created empty, owner-only). */
export function openExecRecording(ctx: Context, name: string, id: string): { stdout: number; stderr: number; files: [string, string] } {
  loadConfig(ctx.paths, name);
  const dir = logsDir(ctx, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: [string, string] = [requireLogName(`exec_${id}.stdout`), requireLogName(`exec_${id}.stderr`)];
  const stdout = fs.openSync(path.join(dir, files[0]), 'w', 0o600);
  let stderr: number;
  try {
    stderr = fs.openSync(path.join(dir, files[1]), 'w', 0o600);
  } catch (err) {
    fs.closeSync(stdout);
    throw err;
  }
  return { stdout, stderr, files };
}
