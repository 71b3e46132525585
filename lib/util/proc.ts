import fs from 'node:fs';

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

/** Parse "PID STARTTIME" as the native helper writes it. */
export function parseRef(text: string | undefined): ProcessRef | undefined {
  if (!text) return undefined;
  const [pid, start] = text.trim().split(/\s+/).map(Number);
  if (!(pid > 0) || !Number.isFinite(start)) return undefined;
  return { pid, startTime: start };
}

/** Ticks since boot → a Date, for uptimes. */
export function startTimeToDate(ticks: number): Date {
  const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const hz = 100; // USER_HZ is 100 on every Linux architecture tslxc supports
  return new Date(Date.now() - (uptime - ticks / hz) * 1000);
}
