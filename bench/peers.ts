import fs from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { launcherPath, repoRoot } from './env.js';
import { lxcInitPid } from './lxc.js';
import { run, type RunResult } from './proc.js';

/**
 * One container under test, tslxc's or LXC's, behind the same small interface so every
 * measurement runs the two the same way. Each method is exactly the command a user would type.
 */
export interface Peer {
  label: string;
  name: string;
  /** The commands, for the report. */
  commands: { start: string; probe: string; stop: string; exec: string; execTerminal: string };
  start(): Promise<RunResult>;
  /** `systemctl is-system-running --wait` inside. */
  probe(): Promise<RunResult>;
  stop(): Promise<RunResult>;
  exec(cmd: string[]): Promise<RunResult>;
  /** exec with a terminal: the command line run under a pty of its own (underPty). */
  execTerminal(cmd: string[], flags?: string[]): Promise<RunResult>;
  /** Kill it (untimed; for recovering between runs). */
  kill(): Promise<RunResult>;
  isRunning(): Promise<boolean>;
  initPid(): Promise<number>;
  /** The host process that supervises the container, with its command line. */
  monitor(): Promise<{ pid: number; cmd: string }>;
}

const PROBE = ['systemctl', 'is-system-running', '--wait'];

export function tslxcPeer(env: BenchEnv, name: string): Peer {
  const pidFile = (f: string) => path.join(env.runDir, 'containers', name, f);
  const readPid = (f: string): number => {
    const pid = Number(fs.readFileSync(pidFile(f), 'utf8').trim().split(/\s+/)[0]);
    if (!pid) throw new Error(`${pidFile(f)}: no PID`);
    return pid;
  };
  return {
    label: 'tslxc',
    name,
    commands: {
      start: `tslxc start ${name}`,
      probe: `tslxc exec ${name} -- ${PROBE.join(' ')}`,
      stop: `tslxc stop ${name}`,
      exec: `tslxc exec ${name} -- true`,
      execTerminal: `ptyrun.py tslxc exec ${name} -- true`,
    },
    start: () => env.tslxc(['start', name]),
    probe: () => env.tslxc(['exec', name, '--', ...PROBE]),
    stop: () => env.tslxc(['stop', name]),
    exec: (cmd) => env.tslxc(['exec', name, '--', ...cmd]),
    execTerminal: (cmd, flags = []) => underPty([launcherPath, 'exec', ...flags, name, '--', ...cmd], env.env),
    kill: () => env.tslxc(['stop', '--force', name]),
    isRunning: async () => {
      const r = await env.tslxc(['list', '--format', 'json']);
      const rows = JSON.parse(r.stdout) as { name: string; state?: string; status?: string }[];
      const row = rows.find((x) => x.name === name);
      return /running/i.test(String(row?.state ?? row?.status ?? ''));
    },
    initPid: async () => readPid('init.pid'),
    monitor: async () => {
      const pid = readPid('monitor.pid');
      return { pid, cmd: cmdline(pid) };
    },
  };
}

export function lxcPeer(env: BenchEnv, name: string, version: string): Peer {
  const args = `-P ${env.lxcPath} -n ${name}`;
  return {
    label: `LXC ${version}`,
    name,
    commands: {
      start: `lxc-start ${args}`,
      probe: `lxc-attach ${args} -- ${PROBE.join(' ')}`,
      stop: `lxc-stop ${args}`,
      exec: `lxc-attach ${args} -- true`,
      execTerminal: `ptyrun.py lxc-attach ${args} -- true`,
    },
    start: () => env.lxc('lxc-start', name),
    probe: () => env.lxc('lxc-attach', name, ['--', ...PROBE]),
    stop: () => env.lxc('lxc-stop', name),
    exec: (cmd) => env.lxc('lxc-attach', name, ['--', ...cmd]),
    execTerminal: (cmd, flags = []) => underPty(['lxc-attach', '-P', env.lxcPath, '-n', name, ...flags, '--', ...cmd]),
    kill: () => env.lxc('lxc-stop', name, ['-k']),
    isRunning: async () => (await env.lxc('lxc-info', name, ['-sH'])).stdout.trim() === 'RUNNING',
    initPid: () => lxcInitPid(env, name),
    monitor: async () => {
      // LXC's monitor is the daemonized lxc-start, "[lxc monitor] LXCPATH NAME": init's parent.
      const init = await lxcInitPid(env, name);
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${init}/status`, 'utf8'))?.[1]);
      const cmd = cmdline(ppid);
      if (!cmd.startsWith('[lxc monitor]')) throw new Error(`init ${init}'s parent ${ppid} is not LXC's monitor: ${cmd}`);
      return { pid: ppid, cmd };
    },
  };
}

/**
 * argv run once on a terminal of its own (bench/ptyrun.py: a new pty as the controlling terminal
 * and fds 0-2 of a new session, as a user's terminal would be). The time is the one ptyrun
 * measured from its fork to argv's exit and the pty's release, without Python's start-up; the
 * cost of the pty and of ptyrun's fork and exec is measured alone by ptyBaseline.
 */
export async function underPty(argv: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const r = await run('/usr/bin/python3', [PTYRUN, ...argv], { env: env ?? process.env });
  const ms = Number(r.stdout.trim().split('\n').pop());
  return Number.isFinite(ms) && ms > 0 ? { ...r, ms } : { ...r, code: r.code || 1, stderr: `ptyrun: no time: ${r.stderr}` };
}
const PTYRUN = path.join(repoRoot, 'bench/ptyrun.py');

export function ptyBaseline(): { label: string; command: string; run: () => Promise<RunResult> } {
  return { label: 'a pty alone', command: 'ptyrun.py true', run: () => underPty(['true']) };
}

export function nodeBaseline(): { label: string; command: string; run: () => Promise<RunResult> } {
  return { label: 'node -e 0', command: 'node -e 0', run: () => run(process.execPath, ['-e', '0']) };
}

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/**
 * The other host-side processes a container costs: the monitor's children other than init
 * (tslxc's exec server, `tslxc-exec`, forked by the monitor at each boot; LXC has none).
 */
export function helperChildren(monitorPid: number, initPid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === initPid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === monitorPid) out.push({ pid: Number(d), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** VmRSS from /proc/PID/status and Pss from smaps_rollup, in KiB. */
export function memoryOf(pid: number): { rssKiB: number; pssKiB: number | undefined } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  let pssKiB: number | undefined;
  try {
    pssKiB = Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
  } catch {
    pssKiB = undefined;
  }
  return { rssKiB, pssKiB };
}
