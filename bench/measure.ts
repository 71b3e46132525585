import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { procStartTime } from './env.js';
import { helperChildren, memoryOf, type Peer } from './peers.js';
import { checkInterrupted, now, pause, run, sleep, type RunResult } from './proc.js';

/** How long a container may take to reach a settled systemd state before the run counts as failed. */
const BOOT_DEADLINE_MS = 90_000;
/** Pause between probes while systemd's bus is not up yet. */
const PROBE_RETRY_MS = 20;

export interface BootResult {
  /** start command issued → the probe printed a settled state. */
  totalMs: number;
  /** the start command alone. */
  startMs: number;
  state: string;
  /** probe attempts (1 = systemd's bus was already up for the first one). */
  probes: number;
  /** With `ipv4`: start command issued → an IPv4 address (not 127/8) configured in the container. */
  ipv4Ms?: number;
  ipv4?: string;
}

/** How often the container's addresses are looked at (a file read, no process spawned). */
const IPV4_POLL_MS = 5;

/**
 * The IPv4 addresses configured in the network namespace of `pid`, from /proc/PID/net/fib_trie
 * (the kernel's local routes: one "/32 host LOCAL" per address). Read from the host the same way
 * for both peers, without entering the container or spawning anything.
 */
export function localIpv4(pid: number): string[] {
  let trie: string;
  try {
    trie = fs.readFileSync(`/proc/${pid}/net/fib_trie`, 'utf8');
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const m of trie.matchAll(/\|-- (\d+\.\d+\.\d+\.\d+)\n\s+\/32 host LOCAL/g)) if (!m[1].startsWith('127.')) out.add(m[1]);
  return [...out];
}

export function failure(what: string, r: RunResult): Error {
  const why = r.timedOut ? 'timed out' : `exited ${r.code}${r.signal ? ` (${r.signal})` : ''}`;
  return new Error(`${what} ${why}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}

/**
 * Start a stopped container and wait until `systemctl is-system-running --wait` prints a state.
 * Right after the start command returns systemd may not have its bus socket yet, and the probe
 * then fails at once ("Failed to connect to bus") with nothing on stdout, or says "offline": it is
 * retried every 20 ms, for both peers alike, as a script would.
 */
export async function bootToRunning(p: Peer, opts: { ipv4?: boolean } = {}): Promise<BootResult> {
  checkInterrupted();
  const t0 = now();
  const s = await p.start();
  const startMs = now() - t0;
  if (s.code !== 0) throw failure(p.commands.start, s);
  // The address is watched beside the systemd probes, from the moment the start command returned
  // (nothing can hold an address before the container exists).
  const ipv4 = opts.ipv4 ? watchIpv4(p, t0) : undefined;
  let result: BootResult | undefined;
  try {
    const settled = await waitForSystemd(p.probe, p.commands.probe, t0);
    result = { totalMs: settled.ms, startMs, state: settled.state, probes: settled.probes };
  } finally {
    if (!result) ipv4?.cancel();
  }
  if (ipv4) {
    const got = await ipv4.done;
    result.ipv4Ms = got.ms;
    result.ipv4 = got.address;
  }
  return result;
}

/**
 * Ask `systemctl is-system-running --wait` (via `probe`) until it prints a settled state; `ms` is
 * counted from t0. Right after a start systemd may not have its bus socket yet: the probe then
 * fails at once ("Failed to connect to bus") with nothing on stdout, or says "offline"/"unknown"
 * (systemctl reached no manager that could answer yet): it is retried every 20 ms, for every
 * peer alike, as a script would.
 */
export async function waitForSystemd(probe: () => Promise<RunResult>, what: string, t0: number): Promise<{ ms: number; state: string; probes: number }> {
  let probes = 0;
  for (;;) {
    const r = await probe();
    probes++;
    const state = r.stdout.trim();
    if (state && state !== 'offline' && state !== 'unknown') return { ms: now() - t0, state, probes };
    if (now() - t0 > BOOT_DEADLINE_MS) throw failure(`${what} (after ${probes} tries)`, r);
    await sleep(PROBE_RETRY_MS);
  }
}

function watchIpv4(p: Peer, t0: number): { done: Promise<{ ms: number; address: string }>; cancel: () => void } {
  let cancelled = false;
  const done = (async () => {
    const init = await p.initPid();
    for (;;) {
      const a = localIpv4(init);
      if (a.length) return { ms: now() - t0, address: a.join(' ') };
      if (cancelled) throw new Error('cancelled');
      if (now() - t0 > BOOT_DEADLINE_MS) throw new Error(`${p.label}'s container got no IPv4 address within ${BOOT_DEADLINE_MS / 1000} s of its start`);
      await sleep(IPV4_POLL_MS);
    }
  })();
  done.catch(() => undefined); // awaited by the caller unless the boot failed first
  return { done, cancel: () => (cancelled = true) };
}

export interface StopResult {
  ms: number;
  /** stop command issued → the container's init gone (polled every 5 ms). */
  initGoneMs?: number;
}

/**
 * Time the stop command; meanwhile watch init's PID (with its start time, so a reused PID does
 * not count) to tell how much of the time is the guest shutting down and how much the tool.
 */
export async function cleanStop(p: Peer): Promise<StopResult> {
  checkInterrupted();
  const init = await p.initPid();
  const initStart = procStartTime(init);
  const t0 = now();
  let done = false;
  const stopped = p.stop().finally(() => (done = true));
  let initGoneMs: number | undefined;
  while (!done) {
    if (initGoneMs === undefined && procStartTime(init) !== initStart) initGoneMs = now() - t0;
    await sleep(5);
  }
  const r = await stopped;
  if (initGoneMs === undefined && procStartTime(init) !== initStart) initGoneMs = r.ms; // went in the last few ms
  if (r.code !== 0) throw failure(p.commands.stop, r);
  if (await p.isRunning()) throw new Error(`${p.commands.stop} returned but ${p.label}'s container still runs`);
  if (initGoneMs === undefined) throw new Error(`${p.commands.stop} returned but init (${init}) still exists`);
  return { ms: r.ms, initGoneMs: Math.min(initGoneMs, r.ms) };
}

export interface MonitorSample {
  pid: number;
  cmd: string;
  rssKiB: number;
  pssKiB?: number;
  /** The monitor's other children (not init), e.g. tslxc's exec server. */
  helpers: { pid: number; comm: string; rssKiB: number; pssKiB?: number }[];
  /** monitor + helpers */
  totalRssKiB: number;
  totalPssKiB?: number;
}

export async function sampleMonitor(p: Peer): Promise<MonitorSample> {
  const m = await p.monitor();
  const mem = memoryOf(m.pid);
  const helpers = helperChildren(m.pid, await p.initPid()).map((h) => ({ ...h, ...memoryOf(h.pid) }));
  const all = [mem, ...helpers];
  const pss = all.every((x) => x.pssKiB !== undefined) ? all.reduce((a, x) => a + x.pssKiB!, 0) : undefined;
  return { ...m, ...mem, helpers, totalRssKiB: all.reduce((a, x) => a + x.rssKiB, 0), totalPssKiB: pss };
}

/** systemd units in `failed` state, and the network interfaces, inside a running container. */
export async function inspect(p: Peer): Promise<{ failedUnits: string[]; interfaces: string[] }> {
  const f = await p.exec(['systemctl', '--failed', '--no-legend', '--plain']);
  const failedUnits = f.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter(Boolean);
  const n = await p.exec(['ls', '/sys/class/net']);
  if (n.code !== 0) throw failure(`${p.label}: ls /sys/class/net`, n);
  return { failedUnits, interfaces: n.stdout.split(/\s+/).filter(Boolean) };
}

/**
 * What the stop command sends, seen with strace on an untimed warm-up stop: every kill,
 * tgkill and pidfd_send_signal of the command and its children, SIGCHLD-free.
 */
export async function traceStop(p: Peer, argv: string[], env: NodeJS.ProcessEnv | undefined, initPid: number): Promise<string[]> {
  const out = path.join(os.tmpdir(), `tslxc-bench-strace-${process.pid}-${p.name}-${Date.now()}`);
  try {
    const r = await run('strace', ['-f', '-qq', '-e', 'trace=kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo', '-o', out, '--', ...argv], { env });
    if (r.code !== 0) throw failure(`strace ${argv.join(' ')}`, r);
    const calls = fs
      .readFileSync(out, 'utf8')
      .split('\n')
      .map((l) =>
        l
          .replace(/^\d+\s+/, '')
          .replace(/\s+/g, ' ')
          .trim(),
      )
      .filter((l) => /^(kill|tkill|tgkill|pidfd_send_signal|rt_sigqueueinfo)\(/.test(l))
      // signal 0 only probes for a process; SIGCHLD is the children's own business
      .filter((l) => /\bSIG[A-Z]/.test(l) && !l.includes('SIGCHLD'))
      .map((l) =>
        l
          .replace(/SIGRT_(\d+)/g, (_m, n) => `SIGRTMIN+${Number(n) - 2}`)
          .replace(new RegExp(`^(t?kill|tgkill)\\(${initPid}\\b`), '$1(init')
          .replace(/^pidfd_send_signal\(\d+/, 'pidfd_send_signal(pidfd'),
      );
    return [...new Set(calls)];
  } finally {
    fs.rmSync(out, { force: true });
  }
}

export interface TimedTool {
  label: string;
  command: string;
  run: () => Promise<RunResult>;
}

/**
 * Each tool run once per round, the tools in a rotating order, with a pause between any two
 * runs (a user at a prompt, or a script doing other work). Returns wall times in ms.
 */
export async function roundsWithPauses(tools: TimedTool[], rounds: number, pauseMs: number, warmup = 1): Promise<number[][]> {
  const times = tools.map(() => [] as number[]);
  for (let round = -warmup; round < rounds; round++) {
    for (let k = 0; k < tools.length; k++) {
      const i = (k + Math.max(round, 0)) % tools.length;
      await pause(pauseMs);
      const r = await tools[i].run();
      if (r.code !== 0) throw failure(tools[i].command, r);
      if (round >= 0) times[i].push(r.ms);
    }
  }
  return times;
}

/** Each tool run `runs` times in a row with no pause (a loop in a script), one tool after another. */
export async function backToBack(tools: TimedTool[], runs: number, warmup = 2): Promise<number[][]> {
  const times: number[][] = [];
  for (const t of tools) {
    await pause(200);
    const xs: number[] = [];
    for (let i = -warmup; i < runs; i++) {
      const r = await t.run();
      if (r.code !== 0) throw failure(t.command, r);
      if (i >= 0) xs.push(r.ms);
    }
    times.push(xs);
  }
  return times;
}
