/**
 * Unprivileged containers, side by side in one run (medians, peers interleaved):
 *   - start → systemd running: tslxc unprivileged (the default; dir pool, and overlay pool), tslxc privileged
 *     (security.privileged=true), LXC 5.0 unprivileged (lxc.idmap, rootfs mounted idmap=container);
 *   - the cost of presenting the rootfs with the container's ids: an idmapped mount (what tslxc
 *     does at each start: the start command's extra time against a privileged start) against
 *     shifting every file of the rootfs once (what a create without idmapped mounts would do).
 *
 *   sudo node dist/bench/userns.js [--runs N]
 *
 * Everything lives under /tmp/tslxc-bench-ID (BenchEnv) and is removed at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BenchEnv } from './env.js';
import { lxcVersion } from './lxc.js';
import { bootToRunning, cleanStop } from './measure.js';
import { lxcPeer, tslxcPeer, type Peer } from './peers.js';
import { runOk } from './proc.js';
import { summarize, type Summary } from './stats.js';
import { hostRanges } from '../lib/config/idmap.js';

const log = (s: string) => process.stderr.write(`[bench-userns] ${s}\n`);
const fmt = (s: Summary) => `${s.median.toFixed(0)} ms (${s.min.toFixed(0)}–${s.max.toFixed(0)}, n=${s.n})`;

/** The LXC peer, unprivileged: the same rootfs (unshifted), mounted idmapped by LXC. */
async function createLxcUnprivileged(env: BenchEnv, name: string, sourceRootfs: string, base: number): Promise<void> {
  const dir = path.join(env.lxcPath, name);
  env.lxcNames.add(name);
  fs.mkdirSync(dir);
  const rootfs = path.join(dir, 'rootfs');
  await runOk('cp', ['-a', sourceRootfs, rootfs], { timeoutMs: 300_000 });
  fs.writeFileSync(path.join(rootfs, 'etc/machine-id'), randomBytes(16).toString('hex') + '\n');
  fs.writeFileSync(
    path.join(dir, 'config'),
    [
      'lxc.include = /usr/share/lxc/config/debian.common.conf',
      'lxc.include = /usr/share/lxc/config/debian.userns.conf',
      'lxc.arch = linux64',
      `lxc.rootfs.path = dir:${rootfs}`,
      'lxc.rootfs.options = idmap=container',
      `lxc.idmap = u 0 ${base} 65536`,
      `lxc.idmap = g 0 ${base} 65536`,
      `lxc.uts.name = ${name}`,
      'lxc.net.0.type = empty',
      'lxc.apparmor.profile = unconfined',
      '',
    ].join('\n'),
  );
}

/** Shift every inode's owner by delta (lchown; set-id bits restored, as chown clears them). */
function shiftTree(dir: string, delta: number): number {
  let n = 0;
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    fs.lchownSync(p, st.uid + delta, st.gid + delta);
    if (!st.isSymbolicLink() && st.mode & 0o6000) fs.chmodSync(p, st.mode & 0o7777);
    n++;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return n;
}

async function main(): Promise<number> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  const env = new BenchEnv();
  // LXC's unprivileged child must reach its rootfs through our root dir.
  fs.chmodSync(env.root, 0o711);
  fs.chmodSync(env.lxcPath, 0o711);
  const base = Math.max(hostRanges().uid.base, hostRanges().gid.base);
  const out: string[] = [];
  try {
    await env.prepareTslxc();
    const un = `un-${env.id}`;
    const pr = `pr-${env.id}`;
    const lx = `lx-${env.id}`;
    const made = await env.tslxc(['create', 'debian', un], { timeoutMs: 600_000 });
    if (made.code !== 0) throw new Error(made.stderr);
    const madeP = await env.tslxc(['create', 'debian', pr, '-c', 'security.privileged=true'], { timeoutMs: 600_000 });
    if (madeP.code !== 0) throw new Error(madeP.stderr);
    // The default pool driver (overlay): its idmapped layers are made in a private mount namespace.
    const ov = `ov-${env.id}`;
    const pool = await env.tslxc(['storage', 'create', 'ovl', 'overlay']);
    if (pool.code !== 0) throw new Error(pool.stderr);
    const madeO = await env.tslxc(['create', 'debian', ov, '-s', 'ovl'], { timeoutMs: 600_000 });
    if (madeO.code !== 0) throw new Error(madeO.stderr);
    const rootfs = path.join(env.stateDir, 'containers', un, 'rootfs');
    await createLxcUnprivileged(env, lx, rootfs, base);
    const version = await lxcVersion();
    const peers: Peer[] = [
      { ...tslxcPeer(env, un), label: 'tslxc unprivileged' },
      { ...tslxcPeer(env, ov), label: 'tslxc unprivileged, overlay' },
      { ...tslxcPeer(env, pr), label: 'tslxc privileged' },
      { ...lxcPeer(env, lx, version), label: `LXC ${version} unprivileged` },
    ];
    const totals = new Map<Peer, number[]>(peers.map((p) => [p, []]));
    const starts = new Map<Peer, number[]>(peers.map((p) => [p, []]));
    for (const p of peers) {
      const first = await bootToRunning(p);
      log(`${p.label}: warm-up boot ${first.totalMs.toFixed(0)} ms, systemd ${first.state}`);
      await cleanStop(p);
    }
    for (let i = 0; i < runs; i++) {
      const order = [...peers.slice(i % peers.length), ...peers.slice(0, i % peers.length)];
      for (const p of order) {
        const b = await bootToRunning(p);
        totals.get(p)!.push(b.totalMs);
        starts.get(p)!.push(b.startMs);
        log(`${p.label} run ${i + 1}/${runs}: ${b.totalMs.toFixed(0)} ms to ${b.state} (start command ${b.startMs.toFixed(0)} ms)`);
        await cleanStop(p);
      }
    }
    out.push(`start → systemd running (Debian 12, dir rootfs unless said, no nic), ${runs} runs interleaved: median (min–max)`);
    for (const p of peers) out.push(`  ${p.label.padEnd(28)} ${fmt(summarize(totals.get(p)!))}   start command ${fmt(summarize(starts.get(p)!))}`);

    // Shifting at create: a copy of the rootfs, every inode chowned into the range and back.
    const copy = path.join(env.root, 'shift-copy');
    await runOk('cp', ['-a', rootfs, copy], { timeoutMs: 300_000 });
    const shiftMs: number[] = [];
    let inodes = 0;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      inodes = shiftTree(copy, i % 2 === 0 ? base : -base);
      shiftMs.push(performance.now() - t0);
    }
    fs.rmSync(copy, { recursive: true, force: true });
    const du = (await runOk('du', ['-sh', rootfs])).stdout.split('\t')[0];
    out.push(`shifting the rootfs once (${inodes} inodes, ${du}; lchown walk in node): ${fmt(summarize(shiftMs))}`);
    const probeMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await runOk(path.join(process.cwd(), 'native/build/tslxc-helper'), ['idmap-probe', rootfs]);
      probeMs.push(performance.now() - t0);
    }
    out.push(`an idmapped mount (tslxc-helper idmap-probe: exec + a user namespace + open_tree + mount_setattr): ${fmt(summarize(probeMs))}`);
  } catch (e) {
    log(`FAILED: ${(e as Error).stack}`);
    process.exitCode = 1;
  } finally {
    const problems = await env.cleanup(log);
    log(problems.length ? `cleanup problems: ${problems.join('; ')}` : 'cleanup: everything removed');
  }
  console.log(out.join('\n'));
  return 0;
}

void main();
