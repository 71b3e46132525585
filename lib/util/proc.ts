import fs from 'node:fs';
import path from 'node:path';

/**
 * Process identity that survives PID reuse: a PID plus its start time (field 22 of /proc/PID/stat,
 * in clock ticks since boot). A recorded pair names a live process only if both still match.
 */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  if (state === 'Z' || state === 'X') return undefined; // a zombie is as good as dead
  const start = Number(rest[19]);
  return Number.isFinite(start) ? start : undefined;
}

/**
 * Whether a PID names a live process (a zombie, killed but not yet reaped, counts as dead; kill(pid, 0)
 * would say alive). For PIDs recorded without a start time; prefer isAlive with a ProcessRef.
 */
export function pidAlive(pid: number): boolean {
  return pid > 0 && processStartTime(pid) !== undefined;
}

export function isAlive(ref: ProcessRef | undefined): boolean {
  if (!ref || !(ref.pid > 0)) return false;
  return processStartTime(ref.pid) === ref.startTime;
}

export function selfRef(): ProcessRef {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 };
}

/**
 * A process's command line (NUL-separated, as in /proc), undefined when it is gone. It reads empty
 * while the process is in the middle of an execve (the new image's arguments are not in place yet):
 * a spare's `nice` execs its shell just after the spawn, and ~2 % of reads made then came back
 * empty here, which made a running copy look like none (and dropSpares leave it running). An empty
 * read is retried for up to ~50 ms; a zombie or a kernel thread stays empty and reads as undefined
 * (so not for scans over all of /proc).
 */
export function commandLine(pid: number): string | undefined {
  for (let i = 0; i < 50; i++) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return undefined;
    }
    if (cmdline !== '') return cmdline;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
  return undefined;
}

/**
 * A pid file's "PID STARTTIME" (layout.json's pidRef, as the monitor writes it): exactly two
 * decimal numbers, one space, an optional newline; anything else names no process. The helper
 * reads them by the same rule (native/layout.c pid_ref_parse).
 */
const PID_REF = /^([1-9][0-9]{0,9}) ([0-9]{1,20})\n?$/;

export function parseRef(text: string | undefined): ProcessRef | undefined {
  const m = text === undefined ? null : PID_REF.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const startTime = Number(m[2]);
  if (pid > 2 ** 31 - 1 || !Number.isSafeInteger(startTime)) return undefined;
  return { pid, startTime };
}

/** Ticks since boot → a Date, for uptimes. */
export function startTimeToDate(ticks: number): Date {
  const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const hz = 100; // USER_HZ is 100 on every Linux architecture tslxc supports
  return new Date(Date.now() - (uptime - ticks / hz) * 1000);
}

/**
 * Which process a pid file names, if it is the one we mean: alive (not a zombie), its argv[0]
 * (by its last path part) is `program`, and `arg` is one of its arguments. A start plan's `proc`
 * check is this rule, as data (instance/plan.ts; native/plan.c only compares).
 */
export function processFromPidFile(pidFile: string, program: string, arg: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split('\n')[0];
  if (!/^\d+$/.test(line)) return undefined;
  const pid = Number(line);
  return pid > 0 && pid <= 0x7fffffff && processMatches(pid, program, arg) ? pid : undefined;
}

/**
 * The live process a pid file names, if its command line contains every one of `marks` (a recycled
 * PID runs something else). Looser than processFromPidFile: it also holds while the process is
 * still the `nice` that execs the real program.
 */
export function pidFileHolder(pidFile: string, marks: string[]): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!(pid > 0) || !pidAlive(pid)) return undefined;
  const cmdline = commandLine(pid);
  return cmdline !== undefined && marks.every((m) => cmdline.includes(m)) ? pid : undefined;
}

/**
 * Opens a new pid file for the process about to be started, or returns undefined when `held()` says
 * a live process has it. A file left by a killed process is taken over.
 */
export function claimPidFile(pidFile: string, held: () => boolean): number | undefined {
  try {
    return fs.openSync(pidFile, 'wx', 0o600);
  } catch {
    if (held()) return undefined;
    fs.rmSync(pidFile, { force: true });
    return fs.openSync(pidFile, 'wx', 0o600);
  }
}

/** A live process whose argv[0] is `program` (by its last path part) and that was given `arg`. */
export function processMatches(pid: number, program: string, arg: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) [ZX] /.test(stat)) return false;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.slice(1).includes(arg) && path.basename(argv[0]) === program;
  } catch {
    return false;
  }
}

/** Every live process running `program` with `arg`. */
export function processesMatching(program: string, arg: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && processMatches(Number(d), program, arg))
    .map(Number);
}

/**
 * End every process running `program` with `arg` (a daemon tslxc started): SIGTERM, then SIGKILL
 * for those still there, and wait until none is left, so what they held (sockets, a mount) is free.
 */
export async function endProcesses(program: string, arg: string): Promise<void> {
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = processesMatching(program, arg);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
    // Wait for the processes themselves, not for their command line: an exiting process drops
    // its memory (and with it /proc/PID/cmdline) before it closes its files and sockets.
    for (let i = 0; i < 200 && pids.some(exiting); i++) await new Promise((r) => setTimeout(r, 10));
  }
}

/** Still there and not yet a zombie (a zombie has closed every file and socket). */
function exiting(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The live processes of a process group (a detached worker, and what it runs). */
export function processGroupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === pgid && rest[0] !== 'Z' && rest[0] !== 'X') out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

export const processGroupAlive = (pgid: number): boolean => processGroupMembers(pgid).length > 0;
