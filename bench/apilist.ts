import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchEnv, launcherPath } from './env.js';
import { LxdDaemon } from './lxd.js';
import { now, run, type RunResult } from './proc.js';
import { waitForSystemd } from './measure.js';

/**
 * `lxc list` of N stopped containers, the same `lxc` 5.0 client against `tslxc serve` and a private
 * LXD 5.0.2 (bench/lxd.ts), and `tslxc list --format json` beside them. The containers are made
 * from tslxc's busybox image, exported in LXD's format for LXD, so both copy a root of a few MiB.
 * With --launch R, also `lxc launch` of the cached Debian image (exported in LXD's format for
 * LXD) until systemd answers inside, R times each, alternating: the same client, each side probed
 * by its own exec. Run alone: `node dist/bench/apilist.js [--count N] [--runs R] [--launch R]`;
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

  server = spawn(launcherPath, ['serve'], { env: env.env, stdio: 'ignore' });
  const socket = path.join(env.stateDir, 'unix.socket');
  for (let i = 0; i < 200 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  const confs = [fs.mkdtempSync(path.join(env.root, 'conf-')), fs.mkdtempSync(path.join(env.root, 'conf-'))];
  const viaTslxc = ['env', `LXD_DIR=${env.stateDir}`, `LXD_CONF=${confs[0]}`, 'lxc'];
  const viaLxd = ['env', `LXD_DIR=${lxd.dir}`, `LXD_CONF=${confs[1]}`, 'lxc'];
  // Both answer the same question first (a sanity check of the setup).
  const a = (await ok(run(viaTslxc[0], [...viaTslxc.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (tslxc)')).stdout.trim().split('\n');
  const b = (await ok(run(viaLxd[0], [...viaLxd.slice(1), 'list', '--format', 'csv', '-c', 'n']), 'lxc list (LXD)')).stdout.trim().split('\n');
  if (a.length !== COUNT || b.length !== COUNT) throw new Error(`lists of ${a.length} and ${b.length}, not ${COUNT}`);
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
  const ratio = times['lxc list (tslxc serve)'].mean_ms / times['lxc list (LXD 5.0.2)'].mean_ms;
  const launch = LAUNCHES > 0 ? await launches(viaTslxc, viaLxd) : undefined;
  process.stdout.write(`${JSON.stringify({ count: COUNT, runs: RUNS, lxd: lxd.version, times, ratio_lxc_list_tslxc_to_lxd: ratio, launch }, null, 2)}\n`);
}

async function launches(viaTslxc: string[], viaLxd: string[]): Promise<Record<string, unknown>> {
  log('launch: tslxc image build debian (cached), export for LXD');
  await ok(env.tslxc(['image', 'build', 'debian'], { timeoutMs: 900_000 }), 'tslxc image build debian');
  const file = path.join(env.root, 'debian.tar.gz');
  await ok(env.tslxc(['image', 'export', 'debian', file], { timeoutMs: 600_000 }), 'tslxc image export debian');
  await lxd.lxcOk(['image', 'import', file, '--alias', 'bench-debian'], { timeoutMs: 600_000 });
  fs.rmSync(file, { force: true });
  const sides = [
    { key: 'tslxc serve', client: viaTslxc, image: 'debian', probe: (n: string) => env.tslxc(['exec', n, '--', ...PROBE]) },
    { key: 'LXD 5.0.2', client: viaLxd, image: 'bench-debian', probe: (n: string) => lxd.lxc(['exec', n, '--', ...PROBE]) },
  ];
  const samples: Record<string, { launch_ms: number[]; systemd_ms: number[] }> = Object.fromEntries(
    sides.map((x) => [x.key, { launch_ms: [], systemd_ms: [] }]),
  );
  for (let i = 0; i < LAUNCHES; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) {
      const name = `d${i}`;
      const t0 = now();
      await ok(run(side.client[0], [...side.client.slice(1), 'launch', side.image, name], { timeoutMs: 300_000 }), `${side.key}: lxc launch`);
      if (side.key.startsWith('LXD')) lxd.instances.add(name);
      samples[side.key].launch_ms.push(now() - t0);
      samples[side.key].systemd_ms.push((await waitForSystemd(() => side.probe(name), `${side.key}: systemd in ${name}`, t0)).ms);
      await ok(run(side.client[0], [...side.client.slice(1), 'delete', '--force', name], { timeoutMs: 300_000 }), `${side.key}: lxc delete`);
      log(`launch ${i + 1}/${LAUNCHES} ${side.key}: ${Math.round(samples[side.key].systemd_ms.at(-1)!)} ms to systemd`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(samples)) out[k] = { ...v, median_launch_ms: median(v.launch_ms), median_systemd_ms: median(v.systemd_ms) };
  out.ratio_systemd_tslxc_to_lxd = median(samples['tslxc serve'].systemd_ms) / median(samples['LXD 5.0.2'].systemd_ms);
  return out;
}

try {
  await main();
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  if (server && server.exitCode === null) server.kill('SIGTERM');
  const problems = await env.cleanup(log);
  for (const p of problems) log(`cleanup: ${p}`);
}
