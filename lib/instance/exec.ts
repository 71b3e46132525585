import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { containerRunDir, containerRunFile, RUN_FILES } from '../state/paths.js';
import type { Context } from '../state/context.js';
import { runHelperInteractive } from '../state/helper.js';
import { liveness, requireInstance } from '../state/runtime.js';
import { DROPPED_CAPABILITIES, SECURITY_FILE } from './policy.js';
import type { CgroupDriver } from '../cgroup/types.js';
import type { RunFile } from '../state/spec.js';
import { cgroupsOf } from '../cgroup/context.js';

export interface ExecOptions {
  tty?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  /** The command's only group (name or gid), as LXD's exec --group; default: the user's groups. */
  group?: string;
  /**
   * The helper's fd of a pipe carrying "s SIGNUM" lines (and, with a pty, "w ROWS COLS"): for a
   * caller that relays the command's streams itself (the API's exec websockets).
   */
  controlFd?: number;
}

/** The running container's init, or a clear error saying why there is none to enter. */
async function runningInit(ctx: Context, name: string): Promise<number> {
  requireInstance(ctx.paths, name);
  const live = liveness(ctx.paths, name);
  if (!live.initAlive) throw new TslxcError(`Container "${name}" is not running`, undefined, `start it with "tslxc start ${name}"`);
  if ((await (await cgroupsOf(ctx)).state(name).catch(() => 'thawed')) === 'frozen') {
    throw new TslxcError(`Container "${name}" is paused`, undefined, `resume it with "tslxc resume ${name}"`);
  }
  return live.files.init!.pid;
}

/** The --seccomp-* options init got at start (start.ts wrote them into the run dir); none: the defaults. */
function startedSeccompArgs(ctx: Context, name: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(containerRunDir(ctx.paths, name), SECURITY_FILE), 'utf8');
  } catch {
    return [];
  }
  let args: unknown;
  try {
    args = JSON.parse(text);
  } catch {
    args = undefined;
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    throw new TslxcError(`Cannot run a command in "${name}"`, `${SECURITY_FILE} in its run dir is damaged`, 'restart the container');
  return args;
}

/**
 * For the native exec path (native/cli.c), written at start: the attach options every command in
 * this container gets (one per line; none is written if one holds a newline), and where to see that it is not frozen ("FILE\nLINE\n":
 * FILE holds LINE while the container runs thawed). The TypeScript path works both out itself.
 */
export const ATTACH_ARGS_FILE = RUN_FILES.attachArgs;
export const EXEC_CHECK_FILE = RUN_FILES.execCheck;

/**
 * What attached commands read back (the attach arguments, where the freeze state shows), as data:
 * the start spec writes them. `seccomp`: the arguments init is started with. A file that cannot be
 * written (a path with a newline) is undefined: such a container is attached through node.
 */
export async function attachRunFiles(
  ctx: Context,
  cg: CgroupDriver,
  name: string,
  seccomp: string[],
): Promise<Array<RunFile | { path: string; data?: undefined }>> {
  const dir = containerRunDir(ctx.paths, name);
  const args = await commonAttachArgs(ctx, cg, name, seccomp);
  const file = path.join(dir, ATTACH_ARGS_FILE);
  const mark = cg.thawedMark(name);
  return [
    args.some((a) => a.includes('\n')) ? { path: file } : { path: file, mode: 0o600, data: args.map((a) => `${a}\n`).join('') },
    { path: path.join(dir, EXEC_CHECK_FILE), mode: 0o600, data: `${mark.file}\n${mark.line}\n` },
  ];
}

/** What every attach into this container takes, besides the pid, the caller's options and the command. */
async function commonAttachArgs(ctx: Context, cg: CgroupDriver, name: string, seccomp = startedSeccompArgs(ctx, name)): Promise<string[]> {
  // The monitor's exec server forks commands from inside the container's cgroups, which spares
  // the cgroup migration (an RCU grace period, several ms) of joining them; the helper falls back
  // to joining them itself when the server is not there.
  const args = ['--exec-socket', containerRunFile(ctx.paths, name, 'execSocket')];
  for (const d of await cg.attachDirs(name)) args.push('--cgroup', d);
  for (const c of DROPPED_CAPABILITIES) args.push('--cap-drop', c);
  args.push(...seccomp);
  return args;
}

/** Run a command inside a running container with the caller's terminal; returns its exit code. */
export async function execInstance(ctx: Context, name: string, command: string[], opts: ExecOptions = {}): Promise<number> {
  return runHelperInteractive(await attachArgs(ctx, name, command, opts));
}

/** What a caller without a terminal of its own (the SSH gateway) adds for a pty: see native/README.md. */
export interface RelayedPty {
  rows: number;
  cols: number;
  /** The helper's fd of the pipe carrying "w ROWS COLS" and "s SIGNUM" lines. */
  controlFd?: number;
}

/** The helper's arguments to run a command in a running container (exec, shell, the gateway). */
export async function attachArgs(ctx: Context, name: string, command: string[], opts: ExecOptions & { relayedPty?: RelayedPty } = {}): Promise<string[]> {
  if (command.length === 0) throw new TslxcError('Nothing to run', 'no command was given', 'use: tslxc exec NAME -- COMMAND...');
  const pid = await runningInit(ctx, name);
  const common = await commonAttachArgs(ctx, await cgroupsOf(ctx), name);
  const args = ['attach', '--pid', String(pid)];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
  if (opts.cwd) args.push('--cwd', opts.cwd);
  if (opts.user) args.push('--user', opts.user);
  if (opts.group) args.push('--group', opts.group);
  if (opts.tty || opts.relayedPty) args.push('--pty');
  if (opts.relayedPty) args.push('--pty-size', `${opts.relayedPty.rows}x${opts.relayedPty.cols}`);
  const controlFd = opts.relayedPty?.controlFd ?? opts.controlFd;
  if (controlFd !== undefined) args.push('--control-fd', String(controlFd));
  args.push(...common, '--', ...command);
  return args;
}

/** A root login shell, as `lxc shell`: su -l where the image has su, else a login sh. */
export function shellInstance(ctx: Context, name: string, opts: { user?: string } = {}): Promise<number> {
  const env: Record<string, string> = {};
  if (process.env.TERM) env.TERM = process.env.TERM;
  const who = opts.user ?? 'root';
  return execInstance(ctx, name, ['/bin/sh', '-c', `if command -v su >/dev/null 2>&1; then exec su -l "$1"; else cd; exec /bin/sh -l; fi`, 'sh', who], {
    // A login shell on a terminal always gets a pty of its own (a terminal of the caller is
    // never handed over: without a pty the helper would relay it through pipes).
    tty: !!process.stdin.isTTY || !!process.stdout.isTTY,
    env,
  });
}

export async function consoleInstance(ctx: Context, name: string, opts: { showLog?: boolean } = {}): Promise<number | string> {
  requireInstance(ctx.paths, name);
  const dir = containerRunDir(ctx.paths, name);
  if (opts.showLog) {
    const parts = [RUN_FILES.consoleLogOld, RUN_FILES.consoleLog].map((f) => {
      try {
        return fs.readFileSync(path.join(dir, f), 'utf8');
      } catch {
        return '';
      }
    });
    return parts.join('');
  }
  const live = liveness(ctx.paths, name);
  if (!live.monitorAlive)
    throw new TslxcError(`Container "${name}" is not running`, undefined, `"tslxc console --show-log ${name}" shows its last console output`);
  return runHelperInteractive(['console', '--socket', path.join(dir, RUN_FILES.consoleSocket), '--control', path.join(dir, RUN_FILES.consoleControl)]);
}
