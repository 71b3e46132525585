/**
 * `npm run bench:lab`: how long labs take, on this host, through the CLI as a teacher runs it.
 *
 *   busybox lab up     `tslxc lab up` of N busybox members (default 20), spawn to exit; until every
 *                      member has run `true` in their container through `tslxc gateway` (ssh2
 *                      client, all members at once); until every container has its IPv4 address
 *   converge no-op     a second `lab up` that finds everything right
 *   reset              `lab reset FILE m1` of one running member (stop, restore, start)
 *   down               `lab down` of the whole lab
 *   debian lab up      `lab up` of M Debian members (default 10), and until every one's
 *                      `systemctl is-system-running --wait` prints its state (all must be running)
 *
 * Medians of --runs runs (default 3; Debian: --debian-runs, default 1). Everything lives in a
 * private installation under /tmp/tslxc-bench-ID (bench/env.ts) on a bridge named after ID with
 * ipv4.nat=false (no traffic leaves the host) and is removed at the end, also after a failure or
 * Ctrl-C. Options: --members N, --debian-members M, --runs R, --debian-runs R, --skip-debian, --json FILE.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import { BenchEnv, cliPath } from './env.js';
import { ed25519KeyPair } from '../lib/ssh/keygen.js';
import { interrupt, now, run, sleep } from './proc.js';
import { summarize, type Summary } from './stats.js';

interface Options {
  members: number;
  debianMembers: number;
  runs: number;
  debianRuns: number;
  debian: boolean;
  json?: string;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      members: { type: 'string' },
      'debian-members': { type: 'string' },
      runs: { type: 'string' },
      'debian-runs': { type: 'string' },
      'skip-debian': { type: 'boolean' },
      json: { type: 'string' },
    },
    strict: true,
  });
  const int = (v: string | undefined, d: number) => (v === undefined ? d : Math.max(1, Number.parseInt(v, 10) || d));
  return {
    members: int(values.members, 20),
    debianMembers: int(values['debian-members'], 10),
    runs: int(values.runs, 3),
    debianRuns: int(values['debian-runs'], 1),
    debian: !values['skip-debian'],
    json: values.json,
  };
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Members' private keys, to log in through the gateway. */
const privateKeys = new Map<string, string>();

function labFile(env: BenchEnv, name: string, image: string, members: number): string {
  const lines = [`name: ${name}`, `network: {name: tslb${env.id}, ipv4.nat: false}`, 'defaults:', `  image: ${image}`, 'members:'];
  for (let i = 1; i <= members; i++) {
    const pair = ed25519KeyPair(`m${i}@bench`);
    privateKeys.set(`m${i}`, pair.private);
    lines.push(`  - name: m${i}`, `    keys: ["${pair.public}"]`);
  }
  const file = path.join(env.root, `${name}.yaml`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function ok(env: BenchEnv, args: string[], timeoutMs = 600_000) {
  const r = await env.tslxc(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`tslxc ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  return r;
}

interface StatusRow {
  container: string;
  state: string;
  ipv4: string[];
}

async function status(env: BenchEnv, file: string): Promise<StatusRow[]> {
  return JSON.parse((await ok(env, ['lab', 'status', file, '--format', 'json'])).stdout).containers;
}

/** Polls until every container has an address; the time from `since`. */
async function untilAddresses(env: BenchEnv, file: string, since: number, timeoutMs = 120_000): Promise<number> {
  for (;;) {
    const rows = await status(env, file);
    if (rows.every((r) => r.state === 'RUNNING' && r.ipv4.length > 0)) return now() - since;
    if (now() - since > timeoutMs)
      throw new Error(
        `no address after ${timeoutMs} ms: ${rows
          .filter((r) => !r.ipv4.length)
          .map((r) => r.container)
          .join(', ')}`,
      );
    await sleep(50);
  }
}

/** `systemctl is-system-running --wait` in every container at once; the time from `since` until the last answers. */
async function untilSystemd(env: BenchEnv, names: string[], since: number): Promise<{ ms: number; states: string[] }> {
  const states = await Promise.all(
    names.map(async (n) => {
      for (;;) {
        // Right after start systemd's bus may not be up: the probe fails at once, and is retried.
        const r = await env.tslxc(['exec', n, '--', 'systemctl', 'is-system-running', '--wait'], { timeoutMs: 300_000 });
        const s = r.stdout.trim();
        if (s && s !== 'offline' && s !== 'starting' && s !== 'initializing') return s;
        if (now() - since > 300_000) return `timeout (${s || r.stderr.trim()})`;
        await sleep(20);
      }
    }),
  );
  return { ms: now() - since, states };
}

/** One command through the gateway as MEMBER (ssh2 client); resolves true when it ran and exited 0. */
function viaGateway(port: number, member: string, command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = new ssh2.Client();
    const done = (ok: boolean) => {
      c.end();
      resolve(ok);
    };
    c.on('ready', () =>
      c.exec(command, (err, ch) => {
        if (err) return done(false);
        ch.on('close', (code: number) => done(code === 0)).resume();
        ch.stderr.resume();
      }),
    );
    c.on('error', () => resolve(false));
    c.connect({ host: '127.0.0.1', port, username: member, privateKey: privateKeys.get(member)!, readyTimeout: 20_000 });
  });
}

/** Every member through the gateway at once, each retrying until `true` runs; the time from `since`. */
async function untilGateway(port: number, members: string[], since: number, timeoutMs = 120_000): Promise<number> {
  await Promise.all(
    members.map(async (m) => {
      while (!(await viaGateway(port, m, 'true'))) {
        if (now() - since > timeoutMs) throw new Error(`${m} not reachable through the gateway after ${timeoutMs} ms`);
        await sleep(50);
      }
    }),
  );
  return now() - since;
}

/** `tslxc gateway` on a free loopback port for the run; stopped (by its PID) at the end. */
async function startGateway(env: BenchEnv): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [cliPath, 'gateway', '--listen', '127.0.0.1:0'], { env: env.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start: ${text}`)), 20_000);
    child.stderr!.on('data', (d) => {
      text += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => reject(new Error(`the gateway exited: ${text}`)));
  });
  return {
    port,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Figures {
  [row: string]: number[];
}

async function busyboxRuns(env: BenchEnv, o: Options, fig: Figures): Promise<void> {
  await ok(env, ['image', 'build', 'busybox']);
  const file = labFile(env, 'benchbb', 'busybox', o.members);
  const gw = await startGateway(env);
  try {
    for (let i = 0; i < o.runs; i++) {
      const t0 = now();
      const up = await ok(env, ['lab', 'up', file]);
      const reach = await untilGateway(
        gw.port,
        [...privateKeys.keys()].filter((m) => Number(m.slice(1)) <= o.members),
        t0,
      );
      const addr = await untilAddresses(env, file, t0);
      (fig[`busybox x${o.members}: lab up (command)`] ??= []).push(up.ms);
      (fig[`busybox x${o.members}: lab up until every member ran a command through the gateway`] ??= []).push(reach);
      (fig[`busybox x${o.members}: lab up until all have an address`] ??= []).push(addr);
      await oneRound(env, o, fig, file);
      log(
        `busybox run ${i + 1}/${o.runs}: up ${(up.ms / 1000).toFixed(2)} s, all through the gateway ${(reach / 1000).toFixed(2)} s, addresses ${(addr / 1000).toFixed(2)} s`,
      );
    }
  } finally {
    await gw.stop();
  }
}

async function oneRound(env: BenchEnv, o: Options, fig: Figures, file: string): Promise<void> {
  {
    const again = await ok(env, ['lab', 'up', file]);
    if (!/is up to date/.test(again.stdout)) throw new Error(`the second lab up changed something: ${again.stdout}`);
    (fig[`busybox x${o.members}: second lab up (nothing to do)`] ??= []).push(again.ms);
    for (let k = 0; k < 3; k++) (fig['busybox: lab reset of one member'] ??= []).push((await ok(env, ['lab', 'reset', file, 'm1'])).ms);
    (fig[`busybox x${o.members}: lab down`] ??= []).push((await ok(env, ['lab', 'down', file, '--volumes'])).ms);
  }
}

async function debianRuns(env: BenchEnv, o: Options, fig: Figures, notes: string[]): Promise<void> {
  log('building (or copying from the build cache) the debian image: not timed');
  await ok(env, ['image', 'build', 'debian'], 1_200_000);
  const file = labFile(env, 'benchdeb', 'debian', o.debianMembers);
  const names = Array.from({ length: o.debianMembers }, (_, i) => `m${i + 1}`);
  for (let i = 0; i < o.debianRuns; i++) {
    const t0 = now();
    const up = await ok(env, ['lab', 'up', file]);
    const sd = await untilSystemd(env, names, t0);
    (fig[`debian x${o.debianMembers}: lab up (command)`] ??= []).push(up.ms);
    (fig[`debian x${o.debianMembers}: lab up until every systemd answers`] ??= []).push(sd.ms);
    const counts = sd.states.reduce<Record<string, number>>((a, s) => ({ ...a, [s]: (a[s] ?? 0) + 1 }), {});
    notes.push(`debian run ${i + 1}: systemd states ${JSON.stringify(counts)}`);
    const r0 = now();
    await ok(env, ['lab', 'reset', file, 'm1']);
    const rsd = await untilSystemd(env, ['m1'], r0);
    (fig['debian: lab reset of one member until systemd answers'] ??= []).push(rsd.ms);
    notes.push(`debian run ${i + 1}: after reset m1 is ${rsd.states[0]}`);
    (fig[`debian x${o.debianMembers}: lab down`] ??= []).push((await ok(env, ['lab', 'down', file, '--volumes'])).ms);
    log(`debian run ${i + 1}/${o.debianRuns}: up ${(up.ms / 1000).toFixed(2)} s, systemd ${(sd.ms / 1000).toFixed(2)} s ${JSON.stringify(counts)}`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the lab bench needs root (it runs real containers)');
  const o = options(process.argv.slice(2));
  const env = new BenchEnv();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => interrupt(sig));
  // No nic in the default profile (the lab gives each container eth0 on its own bridge), and the
  // default pool as a user gets it (made on first use with the best driver).
  fs.mkdirSync(path.join(env.stateDir, 'profiles'), { recursive: true });
  fs.writeFileSync(path.join(env.stateDir, 'profiles', 'default.yaml'), 'description: lab bench (the lab adds eth0)\nconfig: {}\ndevices: {}\n');
  const fig: Figures = {};
  const notes: string[] = [];
  let failure: unknown;
  try {
    await busyboxRuns(env, o, fig);
    if (o.debian) await debianRuns(env, o, fig, notes);
  } catch (err) {
    failure = err;
  } finally {
    const problems = await env.cleanup(log);
    for (const p of problems) notes.push(`cleanup: ${p}`);
  }
  const rows: Array<{ row: string; summary: Summary }> = Object.entries(fig).map(([row, xs]) => ({ row, summary: summarize(xs) }));
  const width = Math.max(...rows.map((r) => r.row.length), 10);
  const host = (await run('uname', ['-r'])).stdout.trim();
  console.log(`tslxc lab bench (kernel ${host}, ${new Date().toISOString()}): medians of wall time, spawn to exit`);
  for (const r of rows)
    console.log(
      `${r.row.padEnd(width)}  ${(r.summary.median / 1000).toFixed(2).padStart(7)} s  (n=${r.summary.n}, ${(r.summary.min / 1000).toFixed(2)}-${(r.summary.max / 1000).toFixed(2)})`,
    );
  for (const n of notes) console.log(`note: ${n}`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ figures: fig, notes }, null, 2));
  if (failure) throw failure;
}

main().catch((err) => {
  process.stderr.write(`bench:lab failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
