/**
 * `npm run bench:gateway`: the SSH gateway against OpenSSH's sshd inside the same Debian
 * container, in one run, on this host.
 *
 *   fresh connection   OpenSSH `ssh ... -- echo hi`, spawn to exit (the output comes just before),
 *                      with each server's preferred key exchange and with curve25519-sha256 on
 *                      both; and ssh2's Client, connect() to the command's first output byte
 *   open connection    one ssh2 connection, then `echo hi` per exec request, request to close
 *
 * The container is reached at its address on a bridge the bench makes (no NAT, no other
 * traffic); the gateway listens on 127.0.0.1. Peers alternate in every round; medians.
 * Everything lives under /tmp/tslxc-bench-ID and is removed at the end, also after a failure or
 * Ctrl-C (bench/env.ts's cleanup: containers, the network, cgroups, processes of the run by PID).
 *
 * Options: --runs N (fresh connections per peer, default 20), --cmd-runs N (commands on an open
 * connection, default 50), --json FILE.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import { BenchEnv, cliPath } from './env.js';
import { interrupt, isInterrupted, now, run, runOk, sleep } from './proc.js';
import { fmtRatio, fmtSummary } from './report.js';
import { summarize, type Summary } from './stats.js';

interface Options {
  runs: number;
  cmdRuns: number;
  json?: string;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: 'string' }, 'cmd-runs': { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    console.log('usage: npm run bench:gateway -- [--runs N] [--cmd-runs N] [--json FILE]');
    process.exit(0);
  }
  const int = (v: string | undefined, d: number) => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a whole number ≥ 1, got "${v}"`);
    return n;
  };
  return { runs: int(values.runs, 20), cmdRuns: int(values['cmd-runs'], 50), json: values.json ? path.resolve(values.json) : undefined };
}

const log = (s: string) => process.stderr.write(`[bench:gateway] ${s}\n`);

interface Peer {
  label: string;
  host: string;
  port: number;
  user: string;
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the bench needs root');
  // `npm run` puts node_modules/.bin first in PATH, where `nft` is @vercel/nft, not nftables
  // (bench/run.ts does the same): tslxc's network setup must find the system's tools.
  process.env.PATH = (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .filter((d) => !/node_modules[\\/]\.bin/.test(d))
    .join(':');
  const env = new BenchEnv();
  let gateway: ChildProcess | undefined;
  const result: Record<string, unknown> = { when: new Date().toISOString(), options: o };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => interrupt(s));
  try {
    await env.prepareTslxc();
    // A bridge of the bench's own: sshd in the container is reached at its address there.
    const bridge = `tslb${env.id}`;
    await runOk(process.execPath, [cliPath, 'network', 'create', bridge, 'ipv4.address=auto', 'ipv4.nat=false'], { env: env.env });
    fs.writeFileSync(
      path.join(env.stateDir, 'profiles', 'benchnet.yaml'),
      `description: bench network\nconfig: {}\ndevices:\n  eth0:\n    type: nic\n    network: ${bridge}\n    name: eth0\n`,
    );
    log('launching a Debian container (sshd inside) on the bench bridge');
    await ok(env.tslxc(['launch', 'debian', 'gw1', '-p', 'default', '-p', 'benchnet'], { timeoutMs: 600_000 }));
    await ok(env.tslxc(['wait', 'gw1', '--ip', '--timeout', '60']));
    for (let i = 0; i < 100; i++) {
      const r = await env.tslxc(['exec', 'gw1', '--', 'systemctl', 'is-active', 'ssh']);
      if (r.stdout.trim() === 'active') break;
      await sleep(200);
    }
    // LXD's InstanceFull objects: the addresses are in state.network.
    type Listed = { name: string; state: { network: Record<string, { addresses: Array<{ family: string; scope: string; address: string }> }> | null } };
    const list = JSON.parse((await ok(env.tslxc(['list', '--format', 'json']))).stdout) as Listed[];
    const nets = Object.values(list.find((c) => c.name === 'gw1')?.state.network ?? {});
    const ip = nets.flatMap((n) => n.addresses).find((a) => a.family === 'inet' && a.scope === 'global')?.address;
    if (!ip) throw new Error('the container got no address');

    const key = path.join(env.root, 'id_ed25519');
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim();
    await ok(env.tslxc(['exec', 'gw1', '--', 'sh', '-c', 'mkdir -p -m 700 /root/.ssh && printf "%s\\n" "$1" > /root/.ssh/authorized_keys', 'sh', pub]));
    await ok(env.tslxc(['gateway', 'user', 'add', 'bench', '--key', `${key}.pub`, '-c', 'gw1']));

    gateway = spawn(process.execPath, [cliPath, 'gateway', '--listen', '127.0.0.1:0'], { env: env.env, stdio: ['ignore', 'ignore', 'pipe'] });
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`the gateway did not start: ${text}`)), 20_000);
      gateway!.stderr!.on('data', (d) => {
        text += d;
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      gateway!.once('exit', (c) => reject(new Error(`the gateway exited ${c}: ${text}`)));
    });
    gateway.stderr!.resume();

    const peers: Peer[] = [
      { label: 'tslxc gateway', host: '127.0.0.1', port, user: 'bench' },
      { label: 'sshd in the container', host: ip, port: 22, user: 'root' },
    ];
    const knownHosts = path.join(env.root, 'known_hosts');
    const sshArgs = (p: Peer, kex: string[] = []) => [
      '-F',
      '/dev/null',
      ...kex,
      '-p',
      String(p.port),
      '-i',
      key,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=accept-new',
      `${p.user}@${p.host}`,
      '--',
      'echo',
      'hi',
    ];
    for (const p of peers) {
      const r = await run('ssh', sshArgs(p));
      if (r.stdout !== 'hi\n') throw new Error(`${p.label}: ssh failed: ${r.stderr.trim()}`);
    }

    log(`fresh connections: ${o.runs} per peer, OpenSSH ssh and ssh2`);
    const fresh = peers.map(() => [] as number[]);
    const freshSameKex = peers.map(() => [] as number[]);
    const sameKex = ['-o', 'KexAlgorithms=curve25519-sha256'];
    const freshSsh2 = peers.map(() => [] as number[]);
    const privateKey = fs.readFileSync(key);
    for (let i = 0; i < o.runs; i++) {
      const order = i % 2 ? [1, 0] : [0, 1];
      for (const k of order) {
        const r = await run('ssh', sshArgs(peers[k]));
        if (r.stdout !== 'hi\n') throw new Error(`${peers[k].label}: ${r.stderr.trim()}`);
        fresh[k].push(r.ms);
        const r2 = await run('ssh', sshArgs(peers[k], sameKex));
        if (r2.stdout !== 'hi\n') throw new Error(`${peers[k].label}: ${r2.stderr.trim()}`);
        freshSameKex[k].push(r2.ms);
        freshSsh2[k].push(await ssh2FirstOutput(peers[k], privateKey));
      }
    }

    log(`commands on an open connection: ${o.cmdRuns} per peer (ssh2)`);
    const clients = await Promise.all(peers.map((p) => connect(p, privateKey)));
    const open = peers.map(() => [] as number[]);
    try {
      for (let i = 0; i < o.cmdRuns + 3; i++) {
        const order = i % 2 ? [1, 0] : [0, 1];
        for (const k of order) {
          const ms = await timedExec(clients[k]);
          if (i >= 3) open[k].push(ms); // the first few warm the peer up
        }
      }
    } finally {
      for (const c of clients) c.end();
    }

    const rows: Array<[string, Summary, Summary]> = [
      ['fresh connection, OpenSSH `ssh -- echo hi` (spawn to exit)', summarize(fresh[0]), summarize(fresh[1])],
      ['fresh connection, OpenSSH ssh, both curve25519-sha256', summarize(freshSameKex[0]), summarize(freshSameKex[1])],
      ['fresh connection, ssh2 connect to first output', summarize(freshSsh2[0]), summarize(freshSsh2[1])],
      ['open connection, per command (ssh2 exec to close)', summarize(open[0]), summarize(open[1])],
    ];
    result.rows = rows.map(([what, gw, sshd]) => ({ what, gateway: gw, sshd }));
    console.log(`\nSSH gateway vs sshd in the same Debian container (medians, min-max)\n`);
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`${'what'.padEnd(w)}  ${'gateway'.padEnd(26)}  ${'sshd'.padEnd(26)}  gateway/sshd`);
    for (const [what, gw, sshd] of rows) console.log(`${what.padEnd(w)}  ${fmtSummary(gw).padEnd(26)}  ${fmtSummary(sshd).padEnd(26)}  ${fmtRatio(gw, sshd)}`);
    console.log(
      `\nThe gateway: ssh2 server in node, session through the helper's attach (the container's exec server). sshd: OpenSSH 9.2 in the container, forking a session per login (PAM, login accounting).`,
    );
    console.log(
      `Key exchange: OpenSSH prefers sntrup761x25519 (sshd has it; ssh2 offers curve25519-sha256 at best): the second row forces the same one on both.`,
    );
    return 0;
  } catch (e) {
    log(`FAILED: ${(e as Error).message}`);
    result.error = (e as Error).message;
    return 1;
  } finally {
    if (gateway && gateway.exitCode === null) {
      process.kill(gateway.pid!, 'SIGTERM');
      await new Promise((r) => gateway!.once('exit', r));
    }
    // The container, then the profile that names the bench's bridge, then the bridge: the
    // network cannot go while a profile uses it.
    await env.tslxc(['delete', '--force', 'gw1'], { duringCleanup: true, timeoutMs: 120_000 });
    fs.rmSync(path.join(env.stateDir, 'profiles', 'benchnet.yaml'), { force: true });
    const problems = await env.cleanup(log).catch((e: Error) => [`cleanup failed: ${e.message}`]);
    log(problems.length ? `cleanup: PROBLEMS: ${problems.join('; ')}` : 'cleanup: everything removed');
    result.cleanup = problems;
    if (o.json) fs.writeFileSync(o.json, JSON.stringify(result, null, 2));
  }
}

async function ok(p: Promise<{ code: number; stderr: string; stdout: string }>) {
  const r = await p;
  if (r.code !== 0) throw new Error(r.stderr.trim() || `exit ${r.code}`);
  return r;
}

function connect(p: Peer, privateKey: Buffer): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c)).on('error', reject); // kept: a later error must not crash the run before its cleanup
    c.connect({ host: p.host, port: p.port, username: p.user, privateKey, hostVerifier: () => true, readyTimeout: 20_000 });
  });
}

async function ssh2FirstOutput(p: Peer, privateKey: Buffer): Promise<number> {
  const t0 = now();
  const c = await connect(p, privateKey);
  try {
    return await new Promise<number>((resolve, reject) =>
      c.exec('echo hi', (err, ch) => {
        if (err) return reject(err);
        ch.once('data', () => resolve(now() - t0));
        ch.resume();
      }),
    );
  } finally {
    c.end();
  }
}

function timedExec(c: ssh2.Client): Promise<number> {
  const t0 = now();
  return new Promise((resolve, reject) =>
    c.exec('echo hi', (err, ch) => {
      if (err) return reject(err);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.on('close', () => (out === 'hi\n' ? resolve(now() - t0) : reject(new Error(`unexpected output ${JSON.stringify(out)}`))));
    }),
  );
}

process.exitCode = (await main()) || (isInterrupted() ? 1 : 0);
