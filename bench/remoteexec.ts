import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BenchEnv, launcherPath } from './env.js';
import { LxdDaemon } from './lxd.js';
import { run, type RunResult } from './proc.js';

/**
 * `exec REMOTE:C -- true` over HTTPS (TLS 1.3, client certificates, the exec websockets): tslxc's
 * CLI against `tslxc serve`, and Debian's `lxc` 5.0 client against a private LXD 5.0.2 (bench/lxd.ts)
 * and against `tslxc serve`, in one hyperfine run, with the local execs of both beside them. Each
 * side runs one busybox container made from tslxc's busybox image (exported in LXD's format for
 * LXD). Run alone: `node dist/bench/remoteexec.js [--runs R]`; it prints one JSON report.
 */
const args = process.argv.slice(2);
const RUNS = (() => {
  const i = args.indexOf('--runs');
  return i >= 0 ? Number(args[i + 1]) : 30;
})();
const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);
// npm and npx put node_modules/.bin first, whose `nft` (@vercel/nft) LXD would run as nftables.
process.env.PATH = (process.env.PATH ?? '')
  .split(':')
  .filter((d) => !d.includes('node_modules'))
  .join(':');

async function ok(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return r;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

interface Timing {
  mean_ms: number;
  stddev_ms: number;
  median_ms: number;
}

async function hyperfine(env: BenchEnv, commands: Record<string, string[]>): Promise<Record<string, Timing>> {
  const out = path.join(env.root, 'hyperfine.json');
  const names = Object.keys(commands);
  const argv = ['-N', '-w', '3', '-r', String(RUNS), '--export-json', out, ...names.flatMap((n) => ['-n', n, commands[n]!.join(' ')])];
  await ok(run('hyperfine', argv, { timeoutMs: 1_800_000 }), 'hyperfine');
  const res = JSON.parse(fs.readFileSync(out, 'utf8')).results as Array<{ command: string; mean: number; stddev: number; median: number }>;
  return Object.fromEntries(res.map((r) => [r.command, { mean_ms: r.mean * 1000, stddev_ms: r.stddev * 1000, median_ms: r.median * 1000 }]));
}

const env = new BenchEnv();
const lxd = new LxdDaemon(env, '1GiB');
(lxd as { pools: LxdDaemon['pools'] }).pools = [{ name: 'bench-dir', driver: 'dir' }];
let server: ReturnType<typeof spawn> | undefined;

async function main(): Promise<void> {
  const clientConf = path.join(env.root, 'client');
  const lxcConfs = { lxd: path.join(env.root, 'lxc-lxd'), tslxc: path.join(env.root, 'lxc-tslxc') };
  env.env.TSLXC_CONF = clientConf;
  await env.prepareTslxc();
  await ok(env.tslxc(['image', 'build', 'busybox']), 'tslxc image build busybox');
  await ok(env.tslxc(['launch', 'busybox', 'rx1']), 'tslxc launch');

  env.onCleanup('LXD', (clog) => lxd.cleanup(clog));
  await lxd.start(log);
  await lxd.preseed();
  const lxdPort = await freePort();
  await lxd.lxcOk(['config', 'set', 'core.https_address', `127.0.0.1:${lxdPort}`]);
  const file = path.join(env.root, 'busybox.tar.gz');
  await ok(env.tslxc(['image', 'export', 'busybox', file]), 'tslxc image export busybox');
  await lxd.lxcOk(['image', 'import', file, '--alias', 'bench-bb']);
  await lxd.lxcOk(['launch', 'bench-bb', 'rx1']);
  lxd.instances.add('rx1');

  const port = await freePort();
  server = spawn(launcherPath, ['serve', '--listen', `127.0.0.1:${port}`], { env: env.env, stdio: 'ignore' });
  for (let i = 0; i < 400 && !fs.existsSync(path.join(env.stateDir, 'serve-addresses.json')); i++) await new Promise((r) => setTimeout(r, 50));
  const lastLine = (r: RunResult) => r.stdout.trim().split('\n').pop()!;
  const tslxcToken = async (name: string) => lastLine(await ok(env.tslxc(['config', 'trust', 'add', name]), 'tslxc config trust add'));
  const lxdToken = async (name: string) => lastLine(await lxd.lxcOk(['config', 'trust', 'add', '--name', name]));
  const lxcWith = (conf: string) => ['env', `LXD_CONF=${conf}`, 'LXD_DIR=/nonexistent', 'lxc'];
  await ok(env.tslxc(['remote', 'add', 'srv', await tslxcToken('bench-tslxc-cli')]), 'tslxc remote add srv');
  await ok(env.tslxc(['remote', 'add', 'lxd', await lxdToken('bench-tslxc-cli')]), 'tslxc remote add lxd');
  await ok(run('env', [...lxcWith(lxcConfs.lxd).slice(1), 'remote', 'add', 'lxd', await lxdToken('bench-lxc')]), 'lxc remote add lxd');
  await ok(run('env', [...lxcWith(lxcConfs.tslxc).slice(1), 'remote', 'add', 'srv', await tslxcToken('bench-lxc')]), 'lxc remote add srv');

  const tslxcCli = [
    'env',
    `TSLXC_DIR=${env.stateDir}`,
    `TSLXC_RUN_DIR=${env.runDir}`,
    `TSLXC_CGROUP_PREFIX=${env.cgroupPrefix}`,
    `TSLXC_CONF=${clientConf}`,
    launcherPath,
  ];
  const commands: Record<string, string[]> = {
    'tslxc exec srv:C -- true (HTTPS to tslxc serve)': [...tslxcCli, 'exec', 'srv:rx1', '--', 'true'],
    'lxc exec lxd:C -- true (HTTPS to LXD 5.0.2)': [...lxcWith(lxcConfs.lxd), 'exec', 'lxd:rx1', '--', 'true'],
    'lxc exec srv:C -- true (HTTPS to tslxc serve)': [...lxcWith(lxcConfs.tslxc), 'exec', 'srv:rx1', '--', 'true'],
    'tslxc exec lxd:C -- true (HTTPS to LXD 5.0.2)': [...tslxcCli, 'exec', 'lxd:rx1', '--', 'true'],
    'tslxc exec C -- true (local)': [...tslxcCli, 'exec', 'rx1', '--', 'true'],
    'lxc exec C -- true (LXD unix socket)': ['env', `LXD_DIR=${lxd.dir}`, `LXD_CONF=${lxcConfs.lxd}`, 'lxc', 'exec', 'rx1', '--', 'true'],
  };
  // Each answers once first: a sanity check of the setup.
  for (const [name, argv] of Object.entries(commands)) await ok(run(argv[0]!, argv.slice(1), { timeoutMs: 60_000 }), name);
  const times = await hyperfine(env, commands);
  const ratio = times['tslxc exec srv:C -- true (HTTPS to tslxc serve)']!.mean_ms / times['lxc exec lxd:C -- true (HTTPS to LXD 5.0.2)']!.mean_ms;
  process.stdout.write(`${JSON.stringify({ runs: RUNS, lxd: lxd.version, times, ratio_tslxc_remote_to_lxc_lxd: ratio }, null, 2)}\n`);
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
