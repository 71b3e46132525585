/**
 * `npm run bench`: tslxc side by side with LXC on the same Debian rootfs, in one run, on this host.
 *
 *   start → running   a stopped container until `systemctl is-system-running --wait` prints a state
 *   clean stop        `tslxc stop` vs `lxc-stop` (both send SIGRTMIN+3 to systemd: traced once)
 *   exec true         `tslxc exec` vs `lxc-attach` vs `node -e 0`, with pauses and back-to-back;
 *                     and the same on a terminal (bench/ptyrun.py's pty), vs the pty alone
 *   monitor memory    the per-container host process: tslxc's monitor vs LXC's "[lxc monitor]"
 *   list              `tslxc list` with 100 busybox containers vs `node -e 0`
 *   net (#6)          start → IPv4 on a bench-private bridge, and a nic's cost to start, vs LXC (veth)
 *   storage (#4)      per pool driver: launch → running, copy, snapshot, restore, vs LXD 5.0
 *   import (#3)       `tslxc image import` vs LXD's `lxc image import` of the same tarball
 *
 * Medians of several runs, peers interleaved so drift on a noisy machine hits both. Everything it
 * makes lives under /tmp/tslxc-bench-ID (a private tslxc state and run dir, a private lxcpath) and
 * in cgroups named after ID, and is removed at the end, also after a failure or Ctrl-C.
 *
 * Options: --json FILE, --runs N (start/stop cycles, default 7), --exec-runs N (default 20),
 * --list-count N (default 100), --list-running N (default 10), --list-runs N (default 9),
 * --no-lxc (tslxc alone), --skip-list, --only PART[,PART...] (core, list, net, storage, import;
 * lxd = storage,import), --net-runs N (default 7), --storage-runs N (default 5), --import-runs N
 * (default 5), --no-lxd (tslxc alone in storage/import), --no-lxd-privileged, --btrfs-size SIZE.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BenchEnv, repoRoot } from './env.js';
import { createLxcContainer, lxcVersion } from './lxc.js';
import {
  backToBack,
  bootToRunning,
  cleanStop,
  inspect,
  roundsWithPauses,
  sampleMonitor,
  traceStop,
  type BootResult,
  type MonitorSample,
  type StopResult,
  type TimedTool,
} from './measure.js';
import { measureLxdParts, type LxdPartsResults } from './lxdparts.js';
import { measureNet, type NetResults } from './net.js';
import { lxcPeer, nodeBaseline, ptyBaseline, tslxcPeer, type Peer } from './peers.js';
import { reportLxdParts, reportNet } from './reportparts.js';
import { Interrupted, interrupt, isInterrupted, pause, runningChildren } from './proc.js';
import { fmtKiB, fmtMs, fmtRatio, fmtSummary, renderTable, type Row } from './report.js';
import { summarize, type Summary } from './stats.js';

const USAGE = `usage: npm run bench -- [--only core,list,net,storage,import|lxd] [--json FILE] [--runs N] [--exec-runs N]
       [--list-count N] [--list-running N] [--list-runs N] [--net-runs N] [--storage-runs N] [--import-runs N]
       [--no-lxc] [--no-lxd] [--no-lxd-privileged] [--btrfs-size SIZE] [--skip-list]
parts: core (start/stop/exec/memory vs LXC), list, net (start → IPv4 vs LXC), storage (per driver vs LXD),
       import (image import vs LXD); lxd = storage,import. Default: all of them.`;

const PARTS = ['core', 'list', 'net', 'storage', 'import'] as const;
type Part = (typeof PARTS)[number];

interface Options {
  parts: Set<Part>;
  netRuns: number;
  storageRuns: number;
  importRuns: number;
  lxd: boolean;
  lxdPrivileged: boolean;
  btrfsSize: string;
  json?: string;
  runs: number;
  execRuns: number;
  listCount: number;
  listRunning: number;
  listRuns: number;
  lxc: boolean;
  list: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'string' },
      runs: { type: 'string' },
      'exec-runs': { type: 'string' },
      'list-count': { type: 'string' },
      'list-running': { type: 'string' },
      'list-runs': { type: 'string' },
      'no-lxc': { type: 'boolean' },
      'skip-list': { type: 'boolean' },
      only: { type: 'string' },
      'net-runs': { type: 'string' },
      'storage-runs': { type: 'string' },
      'import-runs': { type: 'string' },
      'no-lxd': { type: 'boolean' },
      'no-lxd-privileged': { type: 'boolean' },
      'btrfs-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`expected an integer ≥ ${min}, got "${v}"\n${USAGE}`);
    return n;
  };
  const parts = new Set<Part>();
  for (const w of (values.only ?? PARTS.join(','))
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (w === 'lxd') parts.add('storage').add('import');
    else if (w === 'all') PARTS.forEach((x) => parts.add(x));
    else if ((PARTS as readonly string[]).includes(w)) parts.add(w as Part);
    else throw new Error(`--only: unknown part "${w}"\n${USAGE}`);
  }
  if (values['skip-list']) parts.delete('list');
  const btrfsSize = values['btrfs-size'] ?? '8GiB';
  if (!/^\d+(\.\d+)?[KMGT]i?B$/.test(btrfsSize)) throw new Error(`--btrfs-size: expected a size like 8GiB, got "${btrfsSize}"`);
  const o: Options = {
    parts,
    netRuns: int(values['net-runs'], 7, 1),
    storageRuns: int(values['storage-runs'], 5, 1),
    importRuns: int(values['import-runs'], 5, 1),
    lxd: !values['no-lxd'],
    lxdPrivileged: !values['no-lxd-privileged'],
    btrfsSize,
    json: values.json ? path.resolve(values.json) : undefined,
    runs: int(values.runs, 7, 1),
    execRuns: int(values['exec-runs'], 20, 1),
    listCount: int(values['list-count'], 100, 1),
    listRunning: int(values['list-running'], 10, 0),
    listRuns: int(values['list-runs'], 9, 1),
    lxc: !values['no-lxc'],
    list: parts.has('list'),
  };
  if (o.listRunning > o.listCount) throw new Error('--list-running cannot exceed --list-count');
  return o;
}

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** Everything measured; also what --json writes. */
interface Results {
  meta: Record<string, unknown>;
  commands: Record<string, Record<string, string>>;
  lxcConfig?: string;
  warmup: Record<string, { firstBoot?: BootResult; failedUnits?: string[]; interfaces?: string[]; stopSignals?: string[] }>;
  boot: Record<string, { runs: BootResult[]; failures: string[]; total?: Summary; startCmd?: Summary; states: Record<string, number>; failedUnits?: string[] }>;
  stop: Record<string, { runs: StopResult[]; failures: string[]; ms?: Summary; initGone?: Summary }>;
  monitor: Record<
    string,
    { afterBoot: MonitorSample[]; afterExecs?: MonitorSample; rss?: Summary; pss?: Summary; totalRss?: Summary; totalPss?: Summary; helpers?: string }
  >;
  exec: { paused?: Record<string, Summary>; backToBack?: Record<string, Summary>; pauseMs: number };
  list?: { containers: number; running: number; createMs: number; rows: number; states: Record<string, number>; times: Record<string, Summary> };
  net?: NetResults;
  lxdParts?: LxdPartsResults;
  targets: { what: string; target: string; value: string; met: boolean }[];
  notes: string[];
  errors: string[];
  cleanup?: { ok: boolean; problems: string[] };
}

const TSLXC = 'tslxc';
const LXC = 'lxc';
const NODE = 'node';
/** exec on a terminal (under a pty): the keys are the peer's plus this. */
const ON_TTY = '+tty';
const PTY = 'pty';

/**
 * `npm run` puts node_modules/.bin first in PATH, and there `nft` is @vercel/nft (a file tracer
 * that ava brings in), not nftables: `nft list table ...` "succeeds". Neither the bench nor the
 * tslxc it runs may pick up a package's binary for a system tool; a user's shell has no such PATH.
 */
function systemPath(): string[] {
  const before = (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const after = before.filter((d) => !/node_modules[\\/]\.bin/.test(d));
  process.env.PATH = after.join(':');
  return before.filter((d) => !after.includes(d));
}

async function main(): Promise<number> {
  const droppedFromPath = systemPath();
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error('The bench needs root (it boots real containers): sudo npm run bench');
    return 2;
  }
  if (!fs.existsSync(path.join(repoRoot, 'dist/lib/fast/fast.js'))) {
    console.error('tslxc is not built: npm run build');
    return 2;
  }
  const wantsLxc = opts.parts.has('core') || opts.parts.has('net');
  if (wantsLxc && opts.lxc && !hasCommand('lxc-start')) {
    console.error('LXC is not installed (apt-get install lxc), or run with --no-lxc');
    return 2;
  }
  const wantsLxd = opts.parts.has('storage') || opts.parts.has('import');
  if (wantsLxd && opts.lxd && !(hasCommand('lxd') && hasCommand('lxc'))) {
    console.error("LXD is not installed (apt-get install lxd lxd-client: Debian's LXD 5.0), or run with --no-lxd");
    return 2;
  }
  if (opts.parts.has('net') && !hasCommand('dnsmasq')) {
    console.error('dnsmasq is not installed (apt-get install dnsmasq-base): the net part needs it');
    return 2;
  }

  const env = new BenchEnv();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    interrupt(sig);
    log(
      signals === 1
        ? `${sig}: stopping after the current command, then cleaning up`
        : `${sig}: still cleaning up, please wait (running: ${runningChildren().join(' ') || 'nothing'})`,
    );
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  const version = opts.lxc && wantsLxc ? await lxcVersion() : '';
  const r: Results = {
    meta: {
      date: new Date().toISOString(),
      host: os.hostname(),
      kernel: os.release(),
      cpus: os.cpus().length,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      cgroups: fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2 unified' : 'v1 (hybrid)',
      node: process.version,
      lxc: version || undefined,
      tslxcCommit: gitCommit(),
      loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      root: env.root,
      options: { ...opts, parts: [...opts.parts] },
    },
    commands: {},
    warmup: {},
    boot: {},
    stop: {},
    monitor: {},
    exec: { pauseMs: 100 },
    targets: [],
    notes: [],
    errors: [],
  };
  log(`root ${env.root}, cgroup prefix ${env.cgroupPrefix}`);
  if (droppedFromPath.length) r.meta.droppedFromPath = droppedFromPath;

  let failed = false;
  try {
    await measureAll(env, opts, version, r);
  } catch (e) {
    failed = true;
    const text = e instanceof Error ? e.message : String(e);
    // A signal from the terminal reaches the running command too: its failure is the interrupt.
    const interruptedNote = isInterrupted() && !(e instanceof Interrupted) ? ` (interrupted; the command running then failed: ${text})` : '';
    r.errors.push(interruptedNote ? `interrupted${interruptedNote}` : text);
    log(interruptedNote ? `interrupted${interruptedNote}` : `FAILED: ${e instanceof Interrupted ? text : ((e as Error).stack ?? text)}`);
  } finally {
    const problems = await env.cleanup(log).catch((e: Error) => [`cleanup failed: ${e.message}`]);
    r.cleanup = { ok: problems.length === 0, problems };
    log(problems.length ? `cleanup: PROBLEMS:\n  ${problems.join('\n  ')}` : 'cleanup: everything removed');
  }

  r.meta.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  console.log(report(r, opts, version));
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(r, null, 2) + '\n');
    log(`JSON written to ${opts.json}`);
  }
  return failed || !r.cleanup?.ok || isInterrupted() ? 1 : 0;
}

/**
 * No network is configured, so tslxc should never make its nftables table (it would hold NAT for
 * the host): look after each phase, to tell which one made it if it ever does.
 */
let nftSeen = false;
async function watchNft(env: BenchEnv, phase: string, r: Results): Promise<void> {
  if (nftSeen || !(await env.hasNftTable())) return;
  nftSeen = true;
  const msg = `tslxc's nft table "ip ${env.nftTable}" appeared during ${phase} (no network is configured)`;
  r.notes.push(msg);
  log(msg);
}

async function measureAll(env: BenchEnv, opts: Options, version: string, r: Results): Promise<void> {
  if (opts.parts.has('core')) await measureCore(env, opts, version, r);
  if (opts.parts.has('list')) {
    await env.prepareTslxc();
    await measureList(env, opts, r);
    await watchNft(env, 'the list runs', r);
    // 100 containers, some running, would load the machine during the parts below.
    const d = await env.tslxc(['delete', '--force', ...env.tslxcNames()], { timeoutMs: 300_000 });
    if (d.code !== 0) throw new Error(`tslxc delete --force (the list's containers): ${d.stderr.trim()}`);
  }
  if (opts.parts.has('net')) {
    const net = await measureNet(env, { runs: opts.netRuns, lxc: opts.lxc, lxcVersion: version }, log, (x) => (r.net = x));
    // Its containers and network go now: the parts below need neither.
    await removeTslxcContainers(env);
    const d = await env.tslxc(['network', 'delete', net.network]);
    if (d.code !== 0) throw new Error(`tslxc network delete ${net.network}: ${d.stderr.trim()}`);
  }
  if (opts.parts.has('storage') || opts.parts.has('import')) {
    r.lxdParts = { notes: [] };
    await measureLxdParts(
      env,
      {
        storage: opts.parts.has('storage'),
        import: opts.parts.has('import'),
        lxd: opts.lxd,
        lxdPrivileged: opts.lxdPrivileged,
        storageRuns: opts.storageRuns,
        importRuns: opts.importRuns,
        btrfsSize: opts.btrfsSize,
      },
      log,
      r.lxdParts,
    );
  }
}

async function removeTslxcContainers(env: BenchEnv): Promise<void> {
  const names = env.tslxcNames();
  if (!names.length) return;
  const d = await env.tslxc(['delete', '--force', ...names], { timeoutMs: 300_000 });
  if (d.code !== 0) throw new Error(`tslxc delete --force ${names.join(' ')}: ${d.stderr.trim()}`);
}

/** start → running, clean stop, monitor memory, exec: one Debian container per peer. */
async function measureCore(env: BenchEnv, opts: Options, version: string, r: Results): Promise<void> {
  const name = `bench-${env.id}`;
  const peers: Peer[] = [tslxcPeer(env, name)];
  const keyOf = new Map<Peer, string>([[peers[0], TSLXC]]);

  // --- set-up: one tslxc Debian container, and the LXC peer on a copy of its unbooted rootfs
  await env.prepareTslxc();
  r.notes.push(
    "tslxc containers have their root on a dir storage pool and no nic (a default profile in the bench's own TSLXC_DIR); the LXC peer has a dir: rootfs and lxc.net.0.type = empty",
  );
  log(`tslxc create debian ${name}`);
  const created = await env.tslxc(['create', 'debian', name], { timeoutMs: 600_000 });
  if (created.code !== 0) throw new Error(`tslxc create debian ${name}: ${created.stderr.trim()}`);
  const progress = created.stderr.trim().split('\n').filter(Boolean);
  r.notes.push(`tslxc create debian took ${fmtMs(created.ms)}${progress.length ? ` (${progress.join('; ')})` : ''}`);
  if (opts.lxc) {
    log(`LXC container ${name} in ${env.lxcPath} (cp -a of the tslxc rootfs)`);
    const rootfs = path.join(env.stateDir, 'containers', name, 'rootfs');
    if (!fs.existsSync(path.join(rootfs, 'sbin/init'))) throw new Error(`no rootfs with sbin/init at ${rootfs}: has tslxc's storage layout changed?`);
    r.lxcConfig = await createLxcContainer(env, name, rootfs);
    const lp = lxcPeer(env, name, version);
    peers.push(lp);
    keyOf.set(lp, LXC);
  }
  for (const p of peers) {
    r.commands[keyOf.get(p)!] = { ...p.commands };
    r.boot[keyOf.get(p)!] = { runs: [], failures: [], states: {} };
    r.stop[keyOf.get(p)!] = { runs: [], failures: [] };
    r.monitor[keyOf.get(p)!] = { afterBoot: [] };
  }
  r.commands[NODE] = { exec: nodeBaseline().command };
  await watchNft(env, 'set-up', r);

  // --- warm-up: the first boot does first-boot work (SSH host keys ...) and fills the page cache;
  // it is reported but not counted. Its stop runs under strace to show what each stop sends.
  const haveStrace = hasCommand('strace');
  for (const p of peers) {
    const k = keyOf.get(p)!;
    log(`${p.label}: warm-up boot`);
    const first = await bootToRunning(p);
    const seen = await inspect(p);
    r.warmup[k] = { firstBoot: first, ...seen };
    log(
      `${p.label}: first boot ${fmtMs(first.totalMs)}, systemd ${first.state}${seen.failedUnits.length ? `, failed: ${seen.failedUnits.join(' ')}` : ''}, interfaces: ${seen.interfaces.join(' ')}`,
    );
    if (seen.interfaces.join(' ') !== 'lo') throw new Error(`${p.label}'s container has interfaces besides lo: ${seen.interfaces.join(' ')}`);
    if (haveStrace) {
      const argv = k === TSLXC ? [path.join(repoRoot, 'bin/tslxc'), 'stop', name] : ['lxc-stop', '-P', env.lxcPath, '-n', name];
      r.warmup[k].stopSignals = await traceStop(p, argv, k === TSLXC ? env.env : undefined, await p.initPid());
      log(`${p.label}: stop sends ${r.warmup[k].stopSignals!.join('; ') || 'nothing seen'}`);
      await watchNft(env, `${p.label}'s warm-up`, r);
    } else {
      await cleanStop(p);
      r.notes.push('strace not installed: the stop signals were not traced');
    }
    await pause(500);
  }

  // --- start → running, monitor memory, clean stop: cycles, the peers' order alternating
  for (let i = 0; i < opts.runs; i++) {
    const order = i % 2 === 0 ? peers : [...peers].reverse();
    for (const p of order) {
      const k = keyOf.get(p)!;
      try {
        const b = await bootToRunning(p);
        r.boot[k].runs.push(b);
        r.boot[k].states[b.state] = (r.boot[k].states[b.state] ?? 0) + 1;
        await pause(300);
        r.monitor[k].afterBoot.push(await sampleMonitor(p));
        if (i === opts.runs - 1) r.boot[k].failedUnits = (await inspect(p)).failedUnits;
        const s = await cleanStop(p);
        r.stop[k].runs.push(s);
        log(
          `${p.label} run ${i + 1}/${opts.runs}: start→${b.state} ${fmtMs(b.totalMs)} (start cmd ${fmtMs(b.startMs)}, ${b.probes} probe${b.probes > 1 ? 's' : ''}), stop ${fmtMs(s.ms)} (init gone at ${fmtMs(s.initGoneMs ?? NaN)})`,
        );
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        r.boot[k].failures.push((e as Error).message);
        log(`${p.label} run ${i + 1}: FAILED: ${(e as Error).message}`);
        await p.kill().catch(() => undefined);
      }
      await watchNft(env, `${p.label}'s run ${i + 1}`, r);
      await pause(500);
    }
  }
  for (const p of peers) {
    const k = keyOf.get(p)!;
    r.boot[k].total = summarize(r.boot[k].runs.map((b) => b.totalMs));
    r.boot[k].startCmd = summarize(r.boot[k].runs.map((b) => b.startMs));
    r.stop[k].ms = summarize(r.stop[k].runs.map((s) => s.ms));
    r.stop[k].initGone = summarize(r.stop[k].runs.map((s) => s.initGoneMs).filter((x): x is number => x !== undefined));
    r.monitor[k].rss = summarize(r.monitor[k].afterBoot.map((m) => m.rssKiB));
    const pss = r.monitor[k].afterBoot.map((m) => m.pssKiB).filter((x): x is number => x !== undefined);
    if (pss.length) r.monitor[k].pss = summarize(pss);
    r.monitor[k].totalRss = summarize(r.monitor[k].afterBoot.map((m) => m.totalRssKiB));
    const tpss = r.monitor[k].afterBoot.map((m) => m.totalPssKiB).filter((x): x is number => x !== undefined);
    if (tpss.length) r.monitor[k].totalPss = summarize(tpss);
    r.monitor[k].helpers = [...new Set(r.monitor[k].afterBoot.flatMap((m) => m.helpers.map((h) => h.comm)))].join(' ');
  }

  // --- exec true: both containers running and settled
  log('exec: booting both containers');
  for (const p of peers) {
    const b = await bootToRunning(p);
    if (b.state !== 'running') r.notes.push(`${p.label}: systemd ${b.state} before the exec runs`);
  }
  await pause(1000);
  const node = nodeBaseline();
  const pty = ptyBaseline();
  // Without a terminal (a script), and with one (a user at a prompt: tslxc relays it, through the
  // container's own pty by default or pipes with -T; lxc-attach gives a pty when on a terminal).
  const tools: { key: string; tool: TimedTool }[] = [
    ...peers.map((p) => ({ key: keyOf.get(p)!, tool: { label: p.label, command: p.commands.exec, run: () => p.exec(['true']) } })),
    { key: NODE, tool: { label: node.label, command: node.command, run: node.run } },
    ...peers.map((p) => ({
      key: `${keyOf.get(p)!}${ON_TTY}`,
      tool: { label: `${p.label} on a terminal`, command: p.commands.execTerminal, run: () => p.execTerminal(['true']) },
    })),
    {
      key: `${TSLXC}${ON_TTY}-T`,
      tool: {
        label: 'tslxc -T on a terminal',
        command: peers[0].commands.execTerminal.replace(' exec ', ' exec -T '),
        run: () => peers[0].execTerminal(['true'], ['-T']),
      },
    },
    { key: PTY, tool: { label: pty.label, command: pty.command, run: pty.run } },
  ];
  for (const t of tools) if (!r.commands[t.key]) r.commands[t.key] = { exec: t.tool.command };
  log(`exec: ${opts.execRuns} rounds with ${r.exec.pauseMs} ms pauses`);
  const paused = await roundsWithPauses(
    tools.map((t) => t.tool),
    opts.execRuns,
    r.exec.pauseMs,
  );
  r.exec.paused = Object.fromEntries(tools.map((t, i) => [t.key, summarize(paused[i])]));
  log(`exec: ${opts.execRuns} back-to-back runs each`);
  const b2b = await backToBack(
    tools.map((t) => t.tool),
    opts.execRuns,
  );
  r.exec.backToBack = Object.fromEntries(tools.map((t, i) => [t.key, summarize(b2b[i])]));
  for (const p of peers) r.monitor[keyOf.get(p)!].afterExecs = await sampleMonitor(p);
  for (const p of peers) await cleanStop(p);
  await watchNft(env, 'the exec runs', r);

  // The Debian container goes, so that the list part holds exactly its own containers.
  const d = await env.tslxc(['delete', name]);
  if (d.code !== 0) throw new Error(`tslxc delete ${name}: ${d.stderr.trim()}`);
  await watchNft(env, `tslxc delete ${name}`, r);
}

async function measureList(env: BenchEnv, opts: Options, r: Results): Promise<void> {
  const names = Array.from({ length: opts.listCount }, (_, i) => `bb-${String(i).padStart(3, '0')}`);
  log(`list: creating ${names.length} busybox containers`);
  const t0 = performance.now();
  const queue = [...names];
  let failure: Error | undefined;
  // Four at a time; after a failure the others finish their current create and stop, so
  // nothing is still being created while cleanup runs.
  const worker = async () => {
    for (let n = queue.shift(); n && !failure; n = queue.shift()) {
      const c = await env.tslxc(['create', 'busybox', n]).catch((e: Error) => e);
      if (c instanceof Error) failure ??= c;
      else if (c.code !== 0) failure ??= new Error(`tslxc create busybox ${n}: ${c.stderr.trim()}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (failure) throw failure;
  const createMs = performance.now() - t0;
  await watchNft(env, `${names.length} creates`, r);
  if (opts.listRunning) {
    log(`list: starting ${opts.listRunning} of them`);
    const s = await env.tslxc(['start', ...names.slice(0, opts.listRunning)], { timeoutMs: 300_000 });
    if (s.code !== 0) throw new Error(`tslxc start: ${s.stderr.trim()}`);
    await watchNft(env, `starting ${opts.listRunning} busybox containers`, r);
  }
  await pause(1000);
  // What list shows must be right before its time means anything.
  const shown = await env.tslxc(['list']);
  if (shown.code !== 0) throw new Error(`tslxc list: ${shown.stderr.trim()}`);
  const rows = shown.stdout.trim().split('\n').slice(1);
  const states: Record<string, number> = {};
  for (const row of rows) {
    const st = row.trim().split(/\s+/)[1] ?? '?';
    states[st] = (states[st] ?? 0) + 1;
  }
  if (rows.length !== names.length) throw new Error(`tslxc list shows ${rows.length} containers, expected ${names.length}`);
  if ((states.RUNNING ?? 0) !== opts.listRunning) throw new Error(`tslxc list shows ${states.RUNNING ?? 0} RUNNING, expected ${opts.listRunning}`);
  const node = nodeBaseline();
  log(`list: ${opts.listRuns} rounds of tslxc list and node -e 0, 100 ms pauses`);
  const times = await roundsWithPauses(
    [
      { label: 'tslxc list', command: 'tslxc list', run: () => env.tslxc(['list']) },
      { label: node.label, command: node.command, run: node.run },
    ],
    opts.listRuns,
    100,
  );
  r.list = {
    containers: names.length,
    running: opts.listRunning,
    createMs,
    rows: rows.length,
    states,
    times: { [TSLXC]: summarize(times[0]), [NODE]: summarize(times[1]) },
  };
}

function report(r: Results, opts: Options, version: string): string {
  const lxcLabel = version ? `LXC ${version}` : 'LXC';
  const rows: Row[] = [];
  const tgt = (what: string, target: string, value: string, met: boolean) => {
    r.targets.push({ what, target, value, met });
    return `${target}: ${met ? 'MET' : 'NOT MET'}`;
  };

  const bt = r.boot[TSLXC];
  const bl = r.boot[LXC];
  if (bt?.total?.n || bl?.total?.n) {
    rows.push({ what: `start an existing stopped Debian container → systemd settled (${opts.runs} runs each)` });
    rows.push({ what: '  start → running (total)', tslxc: fmtSummary(bt?.total), lxc: fmtSummary(bl?.total), ratio: fmtRatio(bt?.total, bl?.total) });
    rows.push({
      what: '    of which the start command',
      tslxc: fmtSummary(bt?.startCmd),
      lxc: fmtSummary(bl?.startCmd),
      ratio: fmtRatio(bt?.startCmd, bl?.startCmd),
    });
    const states = (b?: Results['boot'][string]) =>
      b
        ? Object.entries(b.states)
            .map(([s, n]) => `${s} ×${n}`)
            .join(', ') + (b.failures.length ? `, FAILED ×${b.failures.length}` : '')
        : '—';
    rows.push({ what: '  systemd state', tslxc: states(bt), lxc: states(bl) });
    const probes = (b?: Results['boot'][string]) => (b?.runs.length ? String(Math.max(...b.runs.map((x) => x.probes))) : '—');
    rows.push({ what: '  probes needed (max)', tslxc: probes(bt), lxc: probes(bl) });
  }
  const st = r.stop[TSLXC];
  const sl = r.stop[LXC];
  if (st?.ms?.n || sl?.ms?.n) {
    rows.push({ what: 'clean stop' });
    rows.push({ what: '  stop (SIGRTMIN+3 to systemd)', tslxc: fmtSummary(st?.ms), lxc: fmtSummary(sl?.ms), ratio: fmtRatio(st?.ms, sl?.ms) });
    rows.push({
      what: '    of which until init exited',
      tslxc: fmtSummary(st?.initGone),
      lxc: fmtSummary(sl?.initGone),
      ratio: fmtRatio(st?.initGone, sl?.initGone),
    });
  }
  const ep = r.exec.paused;
  const eb = r.exec.backToBack;
  if (ep) {
    rows.push({ what: `exec true (${opts.execRuns} runs each)` });
    for (const [label, e] of [
      [`  ${r.exec.pauseMs} ms pause between runs`, ep],
      ['  back-to-back', eb],
    ] as const) {
      if (!e) continue;
      const limit = e[NODE].median + 20;
      const met = e[TSLXC].median <= limit;
      rows.push({
        what: label,
        tslxc: fmtSummary(e[TSLXC]),
        lxc: fmtSummary(e[LXC]),
        node: fmtSummary(e[NODE]),
        ratio: fmtRatio(e[TSLXC], e[LXC]),
        target: tgt(`exec true (${label.trim()})`, `≤ node + 20 ms = ${fmtMs(limit)}`, fmtMs(e[TSLXC].median), met),
      });
    }
    rows.push({ what: `exec true on a terminal (bench/ptyrun.py; "node" column: the pty alone, running true)` });
    for (const [label, e] of [
      [`  ${r.exec.pauseMs} ms pause between runs`, ep],
      ['  back-to-back', eb],
    ] as const) {
      if (!e?.[TSLXC + ON_TTY]) continue;
      rows.push({
        what: `${label}, a pty (tslxc's default)`,
        tslxc: fmtSummary(e[TSLXC + ON_TTY]),
        lxc: fmtSummary(e[LXC + ON_TTY]),
        node: fmtSummary(e[PTY]),
        ratio: fmtRatio(e[TSLXC + ON_TTY], e[LXC + ON_TTY]),
      });
      rows.push({
        what: `${label}, tslxc -T (pipes)`,
        tslxc: fmtSummary(e[`${TSLXC}${ON_TTY}-T`]),
        lxc: fmtSummary(e[LXC + ON_TTY]),
        ratio: fmtRatio(e[`${TSLXC}${ON_TTY}-T`], e[LXC + ON_TTY]),
      });
    }
  }
  const mt = r.monitor[TSLXC];
  const ml = r.monitor[LXC];
  if (mt?.rss?.n || ml?.rss?.n) {
    rows.push({ what: 'host-side memory per running Debian container' });
    const rssMet = (mt?.rss?.median ?? Infinity) < 1024;
    rows.push({
      what: '  monitor VmRSS after boot',
      tslxc: fmtSummary(mt?.rss, fmtKiB),
      lxc: fmtSummary(ml?.rss, fmtKiB),
      ratio: fmtRatio(mt?.rss, ml?.rss),
      target: mt?.rss?.n ? tgt('monitor VmRSS', '< 1 MiB', fmtKiB(mt.rss.median), rssMet) : undefined,
    });
    rows.push({ what: '  monitor PSS after boot', tslxc: fmtSummary(mt?.pss, fmtKiB), lxc: fmtSummary(ml?.pss, fmtKiB), ratio: fmtRatio(mt?.pss, ml?.pss) });
    const helpers = (m?: Results['monitor'][string]) => (m ? `monitor${m.helpers ? ` + ${m.helpers}` : ''}` : '—');
    rows.push({ what: '  host processes per container', tslxc: helpers(mt), lxc: helpers(ml) });
    rows.push({
      what: '    their VmRSS, summed',
      tslxc: fmtSummary(mt?.totalRss, fmtKiB),
      lxc: fmtSummary(ml?.totalRss, fmtKiB),
      ratio: fmtRatio(mt?.totalRss, ml?.totalRss),
    });
    rows.push({
      what: '    their PSS, summed',
      tslxc: fmtSummary(mt?.totalPss, fmtKiB),
      lxc: fmtSummary(ml?.totalPss, fmtKiB),
      ratio: fmtRatio(mt?.totalPss, ml?.totalPss),
    });
    const after = (m?: Results['monitor'][string]) => (m?.afterExecs ? `${fmtKiB(m.afterExecs.rssKiB)} (all: ${fmtKiB(m.afterExecs.totalRssKiB)})` : '—');
    if (mt?.afterExecs || ml?.afterExecs) rows.push({ what: '  monitor VmRSS after the exec runs', tslxc: after(mt), lxc: after(ml) });
  }
  if (r.list) {
    const l = r.list;
    const limit = l.times[NODE].median + 100;
    rows.push({ what: `list with ${l.containers} busybox containers (${l.running} running), ${opts.listRuns} runs, 100 ms pauses` });
    rows.push({
      what: '  tslxc list',
      tslxc: fmtSummary(l.times[TSLXC]),
      lxc: 'n/a',
      node: fmtSummary(l.times[NODE]),
      target: tgt(`list with ${l.containers} containers`, `≤ node + 100 ms = ${fmtMs(limit)}`, fmtMs(l.times[TSLXC].median), l.times[TSLXC].median <= limit),
    });
  }

  const out: string[] = [];
  const m = r.meta;
  out.push('');
  out.push(
    `tslxc bench ${m.date}  commit ${m.tslxcCommit}  kernel ${m.kernel}  ${m.cpus} CPUs  cgroups ${m.cgroups}  node ${m.node}  ${version ? `LXC ${version}` : 'no LXC'}${r.lxdParts?.lxd ? `  LXD ${r.lxdParts.lxd.version}` : ''}  parts: ${[...opts.parts].join(',')}`,
  );
  out.push(
    `load average at start ${(m.loadavgAtStart as number[]).join(' ')}, at end ${(m.loadavgAtEnd as number[] | undefined)?.join(' ') ?? '?'} (other work on the machine shows here)`,
  );
  out.push('Each cell: median (min–max). Ratios compare medians. Peers interleaved in the same run.');
  out.push('');
  if (rows.length) out.push(renderTable(rows, lxcLabel), '');
  const w = r.warmup;
  for (const [k, label] of [
    [TSLXC, 'tslxc'],
    [LXC, lxcLabel],
  ] as const) {
    const x = w[k];
    if (!x) continue;
    const failedUnits = r.boot[k]?.failedUnits ?? x.failedUnits ?? [];
    out.push(
      `${label}: first boot (warm-up, not counted) ${x.firstBoot ? `${fmtMs(x.firstBoot.totalMs)} → ${x.firstBoot.state}` : '—'}; ` +
        `failed units: ${failedUnits.length ? failedUnits.join(' ') : 'none'}; interfaces: ${x.interfaces?.join(' ') ?? '?'}` +
        (x.stopSignals ? `; stop sends (strace): ${x.stopSignals.join('; ') || 'nothing seen'}` : ''),
    );
  }
  if (r.lxcConfig) out.push('lxc-stop: without -t it waits up to 60 s, then kills (lxc-stop(1)); tslxc stop: 30 s by default.');
  if (r.list)
    out.push(
      `list: ${r.list.containers} containers created in ${fmtMs(r.list.createMs)} (4 at a time); list showed ${Object.entries(r.list.states)
        .map(([s, n]) => `${n} ${s}`)
        .join(', ')}.`,
    );
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.net) out.push('', ...reportNet(r.net, lxcLabel, opts.netRuns));
  if (r.lxdParts) out.push(...reportLxdParts(r.lxdParts, r.targets));
  out.push('');
  for (const k of [TSLXC, LXC]) for (const f of r.boot[k]?.failures ?? []) out.push(`FAILED (${k}): ${f}`);
  for (const e of r.errors) out.push(`ERROR: ${e}`);
  out.push(r.cleanup?.ok ? 'cleanup: everything the bench made was removed' : `cleanup: PROBLEMS: ${r.cleanup?.problems.join('; ')}`);
  return out.join('\n');
}

function hasCommand(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

process.exitCode = await main();
