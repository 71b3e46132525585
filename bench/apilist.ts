import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchEnv, launcherPath } from './env.js';
import { startExecStub, type ExecStub } from './apistub.js';
import { LxdDaemon } from './lxd.js';
import { now, run, type RunResult } from './proc.js';
import { waitForSystemd } from './measure.js';

/**
 * `lxc list` of N stopped containers, the same `lxc` 5.0 client against `tslxc serve` and a private
 * LXD 5.0.2 (bench/lxd.ts), and `tslxc list --format json` beside them. The containers are made
 * from tslxc's busybox image, exported in LXD's format for LXD, so both copy a root of a few MiB.
 * With --launch R, also `lxc launch` of the cached Debian image (exported in LXD's format for
 * LXD) until systemd answers inside, R times each, alternating: the same client, each side probed
 * by its own exec. With --exec R, `lxc exec C -- true` R times on each side, interleaved with
 * `lxc --version` (the client alone), the same exec against a stub server that runs nothing
 * (bench/apistub.ts: the floor any server has) and `tslxc exec`, as medians; and the servers' CPU
 * per exec. For those, the server listens on 127.0.0.1 (HTTPS) too, so the same exec goes through
 * a remote, by `tslxc exec srv:C` (our own client) and by `lxc exec srv:C`, each with its
 * certificate trusted through a token. The server's VmRSS is taken idle, after one list, after the timed lists and after the
 * execs. Run alone: `node dist/bench/apilist.js [--count N] [--runs R] [--launch R] [--exec R]`;
 * it prints one JSON report.
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

/** A process's VmRSS in MiB (undefined once it is gone). */
function rssMiB(pid: number | undefined): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
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
  server = spawn(launcherPath, ['serve', ...(EXECS > 0 ? ['--listen', '127.0.0.1:0'] : [])], { env: env.env, stdio: 'ignore' });
  const socket = path.join(env.stateDir, 'unix.socket');
  for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000));
  const rss: Record<string, number | undefined> = { idle: rssMiB(server.pid) };
  const confs = [fs.mkdtempSync(path.join(env.root, 'conf-')), fs.mkdtempSync(path.join(env.root, 'conf-'))];
  const viaTslxc = ['env', `LXD_DIR=${env.stateDir}`, `LXD_CONF=${confs[0]}`, 'lxc'];
  const viaLxd = ['env', `LXD_DIR=${lxd.dir}`, `LXD_CONF=${confs[1]}`, 'lxc'];
  // Both answer the same question first (a sanity check of the setup).
  const a = (await ok(run(viaTslxc[0], [...viaTslxc.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (tslxc)')).stdout.trim().split('\n');
  const b = (await ok(run(viaLxd[0], [...viaLxd.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (LXD)')).stdout.trim().split('\n');
  if (a.length !== COUNT || b.length !== COUNT) throw new Error(`lists of ${a.length} and ${b.length}, not ${COUNT}`);
  rss.after_one_list = rssMiB(server.pid);
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
  rss[`after_${2 * (RUNS + 3)}_lists`] = rssMiB(server.pid);
  const ratio = times['lxc list (tslxc serve)'].mean_ms / times['lxc list (LXD 5.0.2)'].mean_ms;
  const exec = EXECS > 0 ? await execs(viaTslxc, viaLxd, rss) : undefined;
  rss.lxd_daemon = rssMiB(lxd.pid);
  const launch = LAUNCHES > 0 ? await launches(viaTslxc, viaLxd) : undefined;
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(
    `${JSON.stringify({ count: COUNT, runs: RUNS, lxd: lxd.version, load, times, ratio_lxc_list_tslxc_to_lxd: ratio, serve_rss_mib: rss, exec, launch }, null, 2)}\n`,
  );
}

/**
 * `lxc exec C -- true` through tslxc serve, LXD and the stub, with `lxc --version` and `tslxc
 * exec`, interleaved (the order turns each round) so that a change of the host's load hits all
 * alike; medians, and each server's CPU time per exec.
 */
async function execs(viaTslxc: string[], viaLxd: string[], rss: Record<string, number | undefined>): Promise<Record<string, unknown>> {
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
  const cpu0 = { serve: cpuMs(server!.pid), lxd: cpuMs(lxd.pid) };
  log(`exec: ${EXECS} rounds of ${names.length} commands`);
  for (let i = 0; i < EXECS + 2; i++) {
    for (const n of i % 2 ? [...names].reverse() : names) {
      const r = await ok(run(commands[n]![0]!, commands[n]!.slice(1), { timeoutMs: 60_000 }), n);
      if (i >= 2) samples[n]!.push(r.ms); // two warm-up rounds
    }
  }
  const rounds = EXECS + 2;
  const out: Record<string, unknown> = {
    median_ms: Object.fromEntries(names.map((n) => [n, round(median(samples[n]!))])),
    server_cpu_ms_per_exec: {
      'tslxc serve': round((cpuMs(server!.pid) - cpu0.serve) / rounds),
      'LXD 5.0.2': round((cpuMs(lxd.pid) - cpu0.lxd) / rounds),
    },
  };
  out.ratio_remote_exec_tslxc_to_lxc =
    round((median(samples['tslxc exec srv:C (tslxc serve, HTTPS)']!) / median(samples['lxc exec srv:C (tslxc serve, HTTPS)']!)) * 100) / 100;
  out.ratio_exec_tslxc_to_lxd = round((median(samples['lxc exec (tslxc serve)']!) / median(samples['lxc exec (LXD 5.0.2)']!)) * 100) / 100;
  rss[`after_${rounds}_execs`] = rssMiB(server!.pid);
  await stub.close();
  stub = undefined;
  await ok(env.tslxc(['stop', '--force', name]), 'tslxc stop');
  await lxd.lxcOk(['stop', '--force', name]);
  return out;
}

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
  const sides = [
    { key: 'tslxc serve', client: viaTslxc, image: 'debian', inside: (n: string, cmd: string[]) => env.tslxc(['exec', n, '--', ...cmd]) },
    { key: 'LXD 5.0.2', client: viaLxd, image: 'bench-debian', inside: (n: string, cmd: string[]) => lxd.lxc(['exec', n, '--', ...cmd]) },
  ];
  // launch_ms: until `lxc launch` returns (create and start); systemd_ms: until systemd says it is
  // running; userspace_ms: systemd's own boot as it counts it (the guest's part, the same image).
  const samples: Record<string, { launch_ms: number[]; systemd_ms: number[]; userspace_ms: number[] }> = Object.fromEntries(
    sides.map((x) => [x.key, { launch_ms: [], systemd_ms: [], userspace_ms: [] }]),
  );
  for (let i = 0; i < LAUNCHES; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      const name = `d${i}`;
      const t0 = now();
      await ok(run(side.client[0], [...side.client.slice(1), 'launch', side.image, name], { timeoutMs: 300_000 }), `${side.key}: lxc launch`);
      if (side.key.startsWith('LXD')) lxd.instances.add(name);
      samples[side.key].launch_ms.push(now() - t0);
      samples[side.key].systemd_ms.push((await waitForSystemd(() => side.inside(name, PROBE), `${side.key}: systemd in ${name}`, t0)).ms);
      const analyze = (await side.inside(name, ['systemd-analyze'])).stdout;
      const userspace = /([\d.]+)(m?s) \(userspace\)/.exec(analyze);
      if (userspace) samples[side.key].userspace_ms.push(Number(userspace[1]) * (userspace[2] === 's' ? 1000 : 1));
      await ok(run(side.client[0], [...side.client.slice(1), 'delete', '--force', name], { timeoutMs: 300_000 }), `${side.key}: lxc delete`);
      log(`launch ${i + 1}/${LAUNCHES} ${side.key}: ${Math.round(samples[side.key].systemd_ms.at(-1)!)} ms to systemd`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(samples))
    out[k] = {
      ...v,
      median_launch_ms: median(v.launch_ms),
      median_systemd_ms: median(v.systemd_ms),
      median_userspace_ms: v.userspace_ms.length ? median(v.userspace_ms) : undefined,
    };
  out.ratio_systemd_tslxc_to_lxd = median(samples['tslxc serve'].systemd_ms) / median(samples['LXD 5.0.2'].systemd_ms);
  return out;
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
