import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchEnv, launcherPath } from './env.js';
import { startExecStub, type ExecStub } from './apistub.js';
import { LxdDaemon } from './lxd.js';
import { now, pause, run, type RunResult } from './proc.js';
import { waitForSystemd } from './measure.js';
import { listSpares, preparing } from '../lib/storage/spares.js';

/**
 * `lxc list` of N stopped containers, the same `lxc` 5.0 client against `tslxc serve` and a private
 * LXD 5.0.2 (bench/lxd.ts), and `tslxc list --format json` beside them. The containers are made
 * from tslxc's busybox image, exported in LXD's format for LXD, so both copy a root of a few MiB.
 * With --launch R, also `lxc launch` of the cached Debian image (exported in LXD's format for
 * LXD) until systemd answers inside, R times each, alternating: the same client, each side probed
 * by its own exec. tslxc launches on a dir pool as `tslxc storage create` makes it (spare roots on:
 * before each timed launch the bench waits, untimed, for the spare the previous one started) and
 * on one with spare_roots=false (every launch copies the image); a second pass runs `lxc init`
 * and `lxc start` apart, to split a launch into create, start and the guest's boot. With --exec R, `lxc exec C -- true` R times on each side, interleaved with
 * `lxc --version` (the client alone), the same exec against a stub server that runs nothing
 * (bench/apistub.ts: the floor any server has) and `tslxc exec`, as medians; and the servers' CPU
 * per exec. For those, the server listens on 127.0.0.1 (HTTPS) too, so the same exec goes through
 * a remote, by `tslxc exec srv:C` (our own client) and by `lxc exec srv:C`, each with its
 * certificate trusted through a token. With --concurrent N, N `lxc exec` at once while N `lxc
 * monitor` listen, all of which must succeed. Both servers' memory (VmRSS, RssAnon, RssFile, PSS)
 * is taken idle, after one list, after the timed lists and after the execs, beside a bare node's
 * (what node itself costs); serve's is that of its process tree (the native front and its node
 * worker). Serve runs with --idle-timeout S (20 s): with --cold R, at the end, R times, the bench
 * waits for the worker to end (and samples the front's memory the first time), then times the
 * first `lxc list` against the cold server and a second one against the warm one. Run alone:
 * `node dist/bench/apilist.js [--count N] [--runs R] [--launch R] [--exec R] [--concurrent N]
 * [--idle-timeout S] [--cold R]`; it prints one JSON report.
 */
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COUNT = opt('count', 100);
const RUNS = opt('runs', 20);
/** `lxc launch` of the cached Debian image to systemd answering, this many times each (0: skipped). */
const LAUNCHES = opt('launch', 0);
/** `lxc exec C -- true` on each side, this many times (0: skipped). */
const EXECS = opt('exec', 0);
/** `lxc exec` sessions at once, with as many `lxc monitor` listeners (0: skipped). */
const CONCURRENT = opt('concurrent', 0);
/** serve's --idle-timeout, in seconds: longer than any pause between the bench's timed commands. */
const IDLE_TIMEOUT_S = opt('idle-timeout', 20);
/** Rounds of a first `lxc list` against a cold server (its worker ended), then a warm one (0: skipped). */
const COLD = opt('cold', 3);
const PROBE = ['systemctl', 'is-system-running', '--wait'];
const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);

async function ok(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return r;
}

/** Runs fn over items, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

interface Timing {
  mean_ms: number;
  stddev_ms: number;
  median_ms: number;
  user_ms: number;
  system_ms: number;
}

async function hyperfine(commands: Record<string, string[]>): Promise<Record<string, Timing>> {
  const out = path.join(env.root, 'hyperfine.json');
  const names = Object.keys(commands);
  const argv = [
    '-N',
    '-w',
    '3',
    '-r',
    String(RUNS),
    '--export-json',
    out,
    ...names.flatMap((n) => ['-n', n, commands[n].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')]),
  ];
  await ok(run('hyperfine', argv, { timeoutMs: 1_800_000 }), 'hyperfine');
  const res = JSON.parse(fs.readFileSync(out, 'utf8')).results as Array<{
    command: string;
    mean: number;
    stddev: number;
    median: number;
    user: number;
    system: number;
  }>;
  return Object.fromEntries(
    res.map((r) => [
      r.command,
      { mean_ms: r.mean * 1000, stddev_ms: r.stddev * 1000, median_ms: r.median * 1000, user_ms: r.user * 1000, system_ms: r.system * 1000 },
    ]),
  );
}

const env = new BenchEnv();
const lxd = new LxdDaemon(env, '2GiB');
let server: ReturnType<typeof spawn> | undefined;
let stub: ExecStub | undefined;

interface Memory {
  vmrss_mib: number;
  anon_mib: number;
  file_mib: number;
  /** the proportional share: each page shared with N processes counts 1/N (smaps_rollup) */
  pss_mib?: number;
}

/**
 * A process's resident memory in MiB from /proc/PID/status (undefined once it is gone): VmRSS,
 * and its two parts: RssAnon (its own heap and stacks) and RssFile (mapped files, mostly the
 * executable's pages, shared with every other process running the same binary); and its PSS,
 * where a page shared with N processes counts 1/N (so it depends on what else runs).
 */
function memory(pid: number | undefined): Memory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    const mib = (k: number) => Math.round((k / 1024) * 10) / 10;
    const pss = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
    return { vmrss_mib: mib(kib('VmRSS')), anon_mib: mib(kib('RssAnon')), file_mib: mib(kib('RssFile')), pss_mib: mib(pss) };
  } catch {
    return undefined;
  }
}

/** PID's children (the kernel's list; empty once it is gone). */
function childPids(pid: number | undefined): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** serve's node workers: the native front's children that run tslxc.js (not an exec's helpers, which are the worker's). */
function servePids(): { front: number | undefined; workers: number[] } {
  const workers = childPids(server?.pid).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tslxc.js');
    } catch {
      return false;
    }
  });
  return { front: server?.pid, workers };
}

/** The memory of serve's processes (the front and its workers), summed. */
function serveMemory(): Memory | undefined {
  const { front, workers } = servePids();
  const parts = [front, ...workers].map(memory).filter((m): m is Memory => m !== undefined);
  if (!parts.length) return undefined;
  const sum = (k: keyof Memory) => round(parts.reduce((a, m) => a + (m[k] ?? 0), 0));
  return { vmrss_mib: sum('vmrss_mib'), anon_mib: sum('anon_mib'), file_mib: sum('file_mib'), pss_mib: sum('pss_mib') };
}

/** Both servers' memory at one moment of the run. */
function sampleMemory(into: Record<string, Record<string, Memory | undefined>>, when: string): void {
  into[when] = { 'tslxc serve': serveMemory(), 'LXD 5.0.2': memory(lxd.pid) };
}

/** serve's CPU time so far (the front's and its running workers'), in ms. */
function serveCpuMs(): number {
  const { front, workers } = servePids();
  return [front, ...workers].reduce<number>((a, pid) => a + cpuMs(pid), 0);
}

/** A bare node (the same binary and flags as serve, an empty event loop) idle: node's own share. */
async function bareNode(): Promise<Memory | undefined> {
  const child = spawn('node', ['--max-semi-space-size=1', '-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 3000));
  const m = memory(child.pid);
  child.kill('SIGKILL');
  return m;
}

/** CPU time (user + system) a process has used, in ms. */
function cpuMs(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  await env.prepareTslxc();
  await ok(env.tslxc(['image', 'build', 'busybox']), 'tslxc image build busybox');
  const names = Array.from({ length: COUNT }, (_, i) => `l${String(i).padStart(3, '0')}`);
  log(`tslxc: ${COUNT} containers`);
  await pool(names, 4, (n) => ok(env.tslxc(['create', 'busybox', n]), `tslxc create ${n}`));

  env.onCleanup('LXD', (clog) => lxd.cleanup(clog));
  await lxd.start(log);
  await lxd.preseed();
  const file = path.join(env.root, 'busybox.tar.gz');
  await ok(env.tslxc(['image', 'export', 'busybox', file]), 'tslxc image export busybox');
  await lxd.lxcOk(['image', 'import', file, '--alias', 'bench-bb']);
  log(`LXD: ${COUNT} containers`);
  await pool(names, 4, async (n) => {
    await lxd.lxcOk(['init', 'bench-bb', n]);
    lxd.instances.add(n);
  });

  // HTTPS only for the remote execs: a server without it does not load TLS (its idle memory).
  server = spawn(launcherPath, ['serve', '--idle-timeout', `${IDLE_TIMEOUT_S}s`, ...(EXECS > 0 ? ['--listen', '127.0.0.1:0'] : [])], {
    env: env.env,
    stdio: 'ignore',
  });
  const socket = path.join(env.stateDir, 'unix.socket');
  for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000));
  const mem: Record<string, Record<string, Memory | undefined>> = {};
  sampleMemory(mem, 'idle');
  const confs = [fs.mkdtempSync(path.join(env.root, 'conf-')), fs.mkdtempSync(path.join(env.root, 'conf-'))];
  const viaTslxc = ['env', `LXD_DIR=${env.stateDir}`, `LXD_CONF=${confs[0]}`, 'lxc'];
  const viaLxd = ['env', `LXD_DIR=${lxd.dir}`, `LXD_CONF=${confs[1]}`, 'lxc'];
  // Both answer the same question first (a sanity check of the setup).
  const a = (await ok(run(viaTslxc[0], [...viaTslxc.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (tslxc)')).stdout.trim().split('\n');
  const b = (await ok(run(viaLxd[0], [...viaLxd.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (LXD)')).stdout.trim().split('\n');
  if (a.length !== COUNT || b.length !== COUNT) throw new Error(`lists of ${a.length} and ${b.length}, not ${COUNT}`);
  sampleMemory(mem, 'after_one_list');
  const times = await hyperfine({
    'lxc list (tslxc serve)': [...viaTslxc, 'list'],
    'lxc list (LXD 5.0.2)': [...viaLxd, 'list'],
    'lxc list --format json (tslxc serve)': [...viaTslxc, 'list', '--format', 'json'],
    'lxc list --format json (LXD 5.0.2)': [...viaLxd, 'list', '--format', 'json'],
    'tslxc list --format json': [
      'env',
      `TSLXC_DIR=${env.stateDir}`,
      `TSLXC_RUN_DIR=${env.runDir}`,
      `TSLXC_CGROUP_PREFIX=${env.cgroupPrefix}`,
      launcherPath,
      'list',
      '--format',
      'json',
    ],
  });
  sampleMemory(mem, `after_${RUNS + 3}_lists_of_each_kind`);
  const ratio = times['lxc list (tslxc serve)'].mean_ms / times['lxc list (LXD 5.0.2)'].mean_ms;
  const exec = EXECS > 0 ? await execs(viaTslxc, viaLxd, mem) : undefined;
  const concurrent = CONCURRENT > 0 ? await concurrency(viaTslxc) : undefined;
  const launch = LAUNCHES > 0 ? await launches(viaTslxc, viaLxd) : undefined;
  const cold = COLD > 0 ? await coldLists(viaTslxc, mem) : undefined;
  const memory = { ...mem, bare_node_idle: await bareNode() };
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(
    `${JSON.stringify({ count: COUNT, runs: RUNS, idle_timeout_s: IDLE_TIMEOUT_S, lxd: lxd.version, load, times, ratio_lxc_list_tslxc_to_lxd: ratio, memory, exec, concurrent, launch, cold }, null, 2)}\n`,
  );
}

/**
 * `lxc exec C -- true` through tslxc serve, LXD and the stub, with `lxc --version` and `tslxc
 * exec`, interleaved (the order turns each round) so that a change of the host's load hits all
 * alike; medians, and each server's CPU time per exec.
 */
async function execs(viaTslxc: string[], viaLxd: string[], mem: Record<string, Record<string, Memory | undefined>>): Promise<Record<string, unknown>> {
  const name = 'l000';
  await ok(env.tslxc(['start', name]), 'tslxc start');
  await lxd.lxcOk(['start', name]);
  const info = JSON.parse((await ok(run(viaTslxc[0], [...viaTslxc.slice(1), 'query', '/1.0']), 'lxc query /1.0')).stdout) as unknown;
  const stubDir = fs.mkdtempSync(path.join(env.root, 'stub-'));
  stub = await startExecStub(path.join(stubDir, 'unix.socket'), info);
  const viaStub = ['env', `LXD_DIR=${stubDir}`, `LXD_CONF=${fs.mkdtempSync(path.join(env.root, 'conf-'))}`, 'lxc'];
  const exec = ['exec', name, '--', 'true'];
  const remote = await remoteClients();
  const commands: Record<string, string[]> = {
    'lxc --version (the client alone)': ['lxc', '--version'],
    'lxc exec (stub server)': [...viaStub, ...exec],
    'lxc exec (tslxc serve)': [...viaTslxc, ...exec],
    'lxc exec (LXD 5.0.2)': [...viaLxd, ...exec],
    'tslxc exec': ['env', `TSLXC_DIR=${env.stateDir}`, `TSLXC_RUN_DIR=${env.runDir}`, `TSLXC_CGROUP_PREFIX=${env.cgroupPrefix}`, launcherPath, ...exec],
    'tslxc exec srv:C (tslxc serve, HTTPS)': [...remote.tslxc, 'exec', `srv:${name}`, '--', 'true'],
    'lxc exec srv:C (tslxc serve, HTTPS)': [...remote.lxc, 'exec', `srv:${name}`, '--', 'true'],
  };
  const names = Object.keys(commands);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  // Each server's CPU time, charged to the command that ran while it was used (one at a time).
  const serverCpu: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  log(`exec: ${EXECS} rounds of ${names.length} commands`);
  for (let i = 0; i < EXECS + 2; i++) {
    for (const n of i % 2 ? [...names].reverse() : names) {
      const cpu0 = serveCpuMs() + cpuMs(lxd.pid);
      const r = await ok(run(commands[n]![0]!, commands[n]!.slice(1), { timeoutMs: 60_000 }), n);
      if (i >= 2) samples[n]!.push(r.ms); // two warm-up rounds
      if (i >= 2) serverCpu[n]! += serveCpuMs() + cpuMs(lxd.pid) - cpu0;
    }
  }
  const rounds = EXECS + 2;
  const out: Record<string, unknown> = {
    median_ms: Object.fromEntries(names.map((n) => [n, round(median(samples[n]!))])),
    // The clock ticks are 10 ms: a mean over the rounds, not a median.
    server_cpu_ms_per_exec: Object.fromEntries(
      names.filter((n) => n.includes('exec') && n !== 'tslxc exec' && !n.includes('stub')).map((n) => [n, round(serverCpu[n]! / EXECS)]),
    ),
  };
  out.ratio_remote_exec_tslxc_to_lxc =
    round((median(samples['tslxc exec srv:C (tslxc serve, HTTPS)']!) / median(samples['lxc exec srv:C (tslxc serve, HTTPS)']!)) * 100) / 100;
  out.ratio_exec_tslxc_to_lxd = round((median(samples['lxc exec (tslxc serve)']!) / median(samples['lxc exec (LXD 5.0.2)']!)) * 100) / 100;
  sampleMemory(mem, `after_${rounds}_rounds_of_execs`);
  await stub.close();
  stub = undefined;
  await ok(env.tslxc(['stop', '--force', name]), 'tslxc stop');
  await lxd.lxcOk(['stop', '--force', name]);
  return out;
}

/**
 * CONCURRENT `lxc exec C -- echo ok` at once through tslxc serve while as many `lxc monitor`
 * listen on its events: every exec must print ok and exit 0, every listener must see events.
 */
async function concurrency(viaTslxc: string[]): Promise<Record<string, unknown>> {
  const name = 'l000';
  await ok(env.tslxc(['start', name]), 'tslxc start');
  log(`concurrent: ${CONCURRENT} lxc monitor, ${CONCURRENT} lxc exec`);
  const monitors = Array.from({ length: CONCURRENT }, () => {
    const child = spawn(viaTslxc[0]!, [...viaTslxc.slice(1), 'monitor', '--type', 'operation'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { text: '', child };
    child.stdout.on('data', (d: Buffer) => (out.text += d.toString()));
    return out;
  });
  await new Promise((r) => setTimeout(r, 2000));
  const t0 = now();
  const results = await Promise.all(
    Array.from({ length: CONCURRENT }, () => run(viaTslxc[0]!, [...viaTslxc.slice(1), 'exec', name, '--', 'echo', 'ok'], { timeoutMs: 120_000 })),
  );
  const wallMs = now() - t0;
  await new Promise((r) => setTimeout(r, 1000));
  const alive = monitors.filter((m) => m.child.exitCode === null).length;
  for (const m of monitors) m.child.kill('SIGTERM');
  const failed = results.filter((r) => r.code !== 0 || r.stdout.trim() !== 'ok');
  const heard = monitors.filter((m) => m.text.includes('Executing command')).length;
  await ok(env.tslxc(['stop', '--force', name]), 'tslxc stop');
  return {
    sessions: CONCURRENT,
    failed_sessions: failed.length,
    failures: failed.slice(0, 3).map((r) => `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`),
    wall_ms: round(wallMs),
    listeners: CONCURRENT,
    listeners_still_connected: alive,
    listeners_that_saw_the_execs: heard,
    ok: failed.length === 0 && alive === CONCURRENT && heard === CONCURRENT,
  };
}

/** One way of launching, timed against one server. */
interface LaunchSide {
  key: string;
  client: string[];
  image: string;
  /** `lxc launch`/`init` options (the pool) */
  extra: string[];
  inside: (n: string, cmd: string[]) => Promise<RunResult>;
  /** the tslxc pool whose background spare copy must end before anything is timed */
  pool?: string;
}

/**
 * Waits, untimed, until the spare root the last launch on SPARE_POOL started is made, so that its
 * copy (which begins 10 s after the create, in the background) never overlaps a timed launch of
 * either side. `due`: a create on that pool took or copied the image since the last wait.
 */
async function settle(due: boolean): Promise<number> {
  const t0 = now();
  const paths = { stateDir: env.stateDir, runDir: env.runDir, cacheDir: '', cgroupPrefix: '' };
  while (preparing(paths, SPARE_POOL).length || (due && !listSpares(paths, SPARE_POOL).length)) {
    if (now() - t0 > 300_000) throw new Error(`no spare root in pool ${SPARE_POOL} after 300 s`);
    await pause(100);
  }
  return now() - t0;
}

/** A dir pool as `tslxc storage create` makes it: spare roots on. */
const SPARE_POOL = 'bspare';

/**
 * Clients of the server's HTTPS address as the remote "srv": tslxc's (its own TSLXC_CONF, no local
 * state) and lxc's, each trusted with a token of `config trust add`.
 */
async function remoteClients(): Promise<{ tslxc: string[]; lxc: string[] }> {
  const addrs = JSON.parse(fs.readFileSync(path.join(env.stateDir, 'serve-addresses.json'), 'utf8')) as string[];
  if (!addrs.length) throw new Error('tslxc serve gave no HTTPS address');
  const token = async (who: string) => (await ok(env.tslxc(['config', 'trust', 'add', who]), 'tslxc config trust add')).stdout.trim().split('\n').pop()!;
  const tslxcConf = fs.mkdtempSync(path.join(env.root, 'client-'));
  const tslxc = ['env', `TSLXC_CONF=${tslxcConf}`, launcherPath];
  await ok(run(tslxc[0]!, [...tslxc.slice(1), 'remote', 'add', 'srv', await token('bench-tslxc')]), 'tslxc remote add');
  const lxc = ['env', `LXD_CONF=${fs.mkdtempSync(path.join(env.root, 'conf-'))}`, 'lxc'];
  await ok(run(lxc[0]!, [...lxc.slice(1), 'remote', 'add', 'srv', await token('bench-lxc')]), 'lxc remote add');
  return { tslxc, lxc };
}

async function launches(viaTslxc: string[], viaLxd: string[]): Promise<Record<string, unknown>> {
  log('launch: tslxc image build debian (cached), export for LXD');
  await ok(env.tslxc(['image', 'build', 'debian'], { timeoutMs: 900_000 }), 'tslxc image build debian');
  const file = path.join(env.root, 'debian.tar.gz');
  await ok(env.tslxc(['image', 'export', 'debian', file], { timeoutMs: 600_000 }), 'tslxc image export debian');
  await lxd.lxcOk(['image', 'import', file, '--alias', 'bench-debian'], { timeoutMs: 600_000 });
  fs.rmSync(file, { force: true });
  await ok(env.tslxc(['storage', 'create', SPARE_POOL, 'dir']), `tslxc storage create ${SPARE_POOL} dir`);
  const tslxcInside = (n: string, cmd: string[]) => env.tslxc(['exec', n, '--', ...cmd]);
  const sides: LaunchSide[] = [
    { key: 'tslxc serve', client: viaTslxc, image: 'debian', extra: ['-s', SPARE_POOL], inside: tslxcInside, pool: SPARE_POOL },
    { key: 'LXD 5.0.2', client: viaLxd, image: 'bench-debian', extra: [], inside: (n, cmd) => lxd.lxc(['exec', n, '--', ...cmd]) },
    { key: 'tslxc serve (no spare)', client: viaTslxc, image: 'debian', extra: ['-s', 'default'], inside: tslxcInside },
  ];
  const lxc = (side: LaunchSide, args: string[]) => run(side.client[0]!, [...side.client.slice(1), ...args], { timeoutMs: 300_000 });
  // launch_ms: until `lxc launch` returns (create and start); systemd_ms: until systemd says it is
  // running; userspace_ms: systemd's own boot as it counts it (the guest's part, the same image).
  // The split pass: init_ms (`lxc init`: the create), start_ms (`lxc start`), boot_ms (from the
  // start's return to systemd running).
  type Samples = { launch_ms: number[]; systemd_ms: number[]; userspace_ms: number[]; init_ms: number[]; start_ms: number[]; boot_ms: number[] };
  const samples: Record<string, Samples> = Object.fromEntries(
    sides.map((x) => [x.key, { launch_ms: [], systemd_ms: [], userspace_ms: [], init_ms: [], start_ms: [], boot_ms: [] }]),
  );
  const settled: number[] = [];
  let spareDue = false;
  const track = (side: LaunchSide, name: string) => {
    if (side.key.startsWith('LXD')) lxd.instances.add(name);
  };
  // Round 0 warms up both (and leaves the first spare); then LAUNCHES timed rounds of `lxc launch`
  // and as many of `lxc init` + `lxc start`.
  for (let i = 0; i <= 2 * LAUNCHES; i++) {
    const split = i > LAUNCHES;
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      if (split && side.key.endsWith('(no spare)')) continue;
      settled.push(await settle(spareDue));
      spareDue = false;
      const name = `d${i}${side.key.endsWith('(no spare)') ? 'n' : ''}`;
      const s = samples[side.key]!;
      const t0 = now();
      let tStart = t0;
      if (split) {
        track(side, name);
        await ok(lxc(side, ['init', side.image, name, ...side.extra]), `${side.key}: lxc init`);
        tStart = now();
        await ok(lxc(side, ['start', name]), `${side.key}: lxc start`);
      } else {
        track(side, name);
        await ok(lxc(side, ['launch', side.image, name, ...side.extra]), `${side.key}: lxc launch`);
      }
      const launched = now();
      if (side.pool) spareDue = true;
      const systemd = (await waitForSystemd(() => side.inside(name, PROBE), `${side.key}: systemd in ${name}`, t0)).ms;
      if (i > 0 && split) {
        s.init_ms.push(tStart - t0);
        s.start_ms.push(launched - tStart);
        s.boot_ms.push(t0 + systemd - launched);
      } else if (i > 0) {
        s.launch_ms.push(launched - t0);
        s.systemd_ms.push(systemd);
        const analyze = (await side.inside(name, ['systemd-analyze'])).stdout;
        const userspace = /([\d.]+)(m?s) \(userspace\)/.exec(analyze);
        if (userspace) s.userspace_ms.push(Number(userspace[1]) * (userspace[2] === 's' ? 1000 : 1));
      }
      await ok(lxc(side, ['delete', '--force', name]), `${side.key}: lxc delete`);
      log(`launch ${i}/${2 * LAUNCHES}${i ? '' : ' (warm-up)'} ${side.key}: ${Math.round(systemd)} ms to systemd`);
    }
  }
  settled.push(await settle(spareDue));
  const out: Record<string, unknown> = {};
  const med = (xs: number[]) => (xs.length ? round(median(xs)) : undefined);
  for (const [k, v] of Object.entries(samples))
    out[k] = {
      ...v,
      median_launch_ms: med(v.launch_ms),
      median_systemd_ms: med(v.systemd_ms),
      median_userspace_ms: med(v.userspace_ms),
      median_init_ms: med(v.init_ms),
      median_start_ms: med(v.start_ms),
      median_boot_ms: med(v.boot_ms),
    };
  const ratio = (k: string) => round((median(samples[k]!.systemd_ms) / median(samples['LXD 5.0.2']!.systemd_ms)) * 100) / 100;
  out.ratio_systemd_tslxc_to_lxd = ratio('tslxc serve');
  out.ratio_systemd_tslxc_no_spare_to_lxd = ratio('tslxc serve (no spare)');
  out.untimed_wait_for_spares_ms = settled.map(round);
  return out;
}

/**
 * What the idle timeout costs: COLD times, the first `lxc list` once serve's worker has ended (the
 * front starts one for it) and a second one right after (warm). The first wait also gives the
 * memory of a server nobody uses: the front alone.
 */
async function coldLists(viaTslxc: string[], mem: Record<string, Record<string, Memory | undefined>>): Promise<Record<string, unknown>> {
  const list = [...viaTslxc.slice(1), 'list'];
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < COLD; i++) {
    const t0 = now();
    // Operations are kept a minute after they end (for pollers): the worker waits for those too.
    const limitS = IDLE_TIMEOUT_S + 60 + 60;
    while (servePids().workers.length > 0) {
      if (now() - t0 > limitS * 1000) throw new Error(`serve's worker did not end within ${limitS} s`);
      await pause(100);
    }
    if (i === 0) {
      await pause(1000);
      sampleMemory(mem, `idle_after_the_idle_timeout_${IDLE_TIMEOUT_S}s`);
    }
    cold.push((await ok(run(viaTslxc[0]!, list), 'lxc list (cold)')).ms);
    warm.push((await ok(run(viaTslxc[0]!, list), 'lxc list (warm)')).ms);
    log(`cold ${i + 1}/${COLD}: first lxc list ${Math.round(cold.at(-1)!)} ms, then ${Math.round(warm.at(-1)!)} ms`);
  }
  return { lxc_list_cold_ms: cold.map(round), lxc_list_warm_ms: warm.map(round), median_cold_ms: round(median(cold)), median_warm_ms: round(median(warm)) };
}

try {
  await main();
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await stub?.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  const problems = await env.cleanup(log);
  for (const p of problems) log(`cleanup: ${p}`);
}
