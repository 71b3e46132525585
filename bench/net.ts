import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { createLxcContainer } from './lxc.js';
import { bootToRunning, cleanStop, inspect, type BootResult } from './measure.js';
import { lxcPeer, tslxcPeer, type Peer } from './peers.js';
import { Interrupted, pause, run, runOk, sleep } from './proc.js';
import { summarize, type Summary } from './stats.js';

/**
 * Issue #6: the time from `start` to the container holding its IPv4 address, and what a nic adds
 * to start, tslxc beside LXC in the same run.
 *
 *  tslxc: a managed network of the bench's own (bridge tbn<ID>, tslxc's dnsmasq, ipv4.nat=false,
 *         no IPv6), and `tslxc network attach` of a nic eth0.
 *  LXC:   a bridge the bench makes (tbb<ID>) with a dnsmasq the bench runs, serving a dynamic range
 *         the way lxc-net's does, and `lxc.net.0.type = veth` + `lxc.net.0.link = tbb<ID>`.
 *
 * Both guests are the same Debian rootfs, whose systemd-networkd does DHCP on eth*. The address is
 * seen from the host in both containers' network namespaces (/proc/INIT/net/fib_trie, every 5 ms).
 * Each peer also has a twin without any nic, booted in the same rounds: the difference of the
 * medians is what networking costs. Traffic stays on the two bridges (DHCP, and whatever the guest
 * sends to its gateway); nothing is routed or NATed, and ip_forward is checked to be untouched.
 */

export interface NetResults {
  network: string;
  tslxcSubnet?: string;
  lxcBridge?: string;
  lxcSubnet?: string;
  ipForward: { before: string; after?: string };
  warmup: Record<string, { firstBoot: BootResult; interfaces: string[]; failedUnits: string[] }>;
  boot: Record<
    string,
    { runs: BootResult[]; failures: string[]; states: Record<string, number>; total?: Summary; startCmd?: Summary; ipv4?: Summary; addresses: string[] }
  >;
  notes: string[];
}

export const NET_KEYS = {
  tslxcNic: 'tslxc, nic',
  tslxcNone: 'tslxc, no nic',
  lxcNic: 'LXC, nic',
  lxcNone: 'LXC, no nic',
} as const;

interface NetPeer {
  key: string;
  peer: Peer;
  nic: boolean;
  subnet?: string;
}

/** `keep` gets the results object at once, so a failure halfway keeps what was measured. */
export async function measureNet(
  env: BenchEnv,
  o: { runs: number; lxc: boolean; lxcVersion: string },
  log: (s: string) => void,
  keep: (r: NetResults) => void,
): Promise<NetResults> {
  const network = `tbn${env.id}`;
  const r: NetResults = { network, ipForward: { before: readSysctl('net/ipv4/ip_forward') }, warmup: {}, boot: {}, notes: [] };
  keep(r);
  await env.prepareTslxc();

  log(`net: tslxc network create ${network} ipv4.address=auto ipv4.nat=false ipv6.address=none`);
  const nc = await env.tslxc(['network', 'create', network, 'ipv4.address=auto', 'ipv4.nat=false', 'ipv6.address=none']);
  if (nc.code !== 0) throw new Error(`tslxc network create ${network}: ${nc.stderr.trim()}`);
  r.tslxcSubnet = await bridgeSubnet(network);

  const base = `bench-${env.id}`;
  const peers: NetPeer[] = [];
  for (const [suffix, nic] of [
    ['nic', true],
    ['nonic', false],
  ] as const) {
    const name = `${base}-${suffix}`;
    log(`net: tslxc create debian ${name}${nic ? ` + a nic on ${network}` : ''}`);
    const c = await env.tslxc(['create', 'debian', name], { timeoutMs: 600_000 });
    if (c.code !== 0) throw new Error(`tslxc create debian ${name}: ${c.stderr.trim()}`);
    if (nic) {
      const a = await env.tslxc(['network', 'attach', network, name, 'eth0']);
      if (a.code !== 0) throw new Error(`tslxc network attach ${network} ${name} eth0: ${a.stderr.trim()}`);
    }
    peers.push({ key: nic ? NET_KEYS.tslxcNic : NET_KEYS.tslxcNone, peer: tslxcPeer(env, name), nic, subnet: nic ? r.tslxcSubnet : undefined });
  }

  if (o.lxc) {
    const bridge = await makeLxcBridge(env, log);
    r.lxcBridge = bridge.name;
    r.lxcSubnet = bridge.subnet;
    for (const p of [...peers]) {
      const name = p.peer.name;
      const rootfs = path.join(env.stateDir, 'containers', name, 'rootfs');
      if (!fs.existsSync(path.join(rootfs, 'sbin/init'))) throw new Error(`no rootfs with sbin/init at ${rootfs}: has tslxc's storage layout changed?`);
      const net = p.nic
        ? ['lxc.net.0.type = veth', `lxc.net.0.link = ${bridge.name}`, 'lxc.net.0.name = eth0', 'lxc.net.0.flags = up', `lxc.net.0.hwaddr = ${randomMac()}`]
        : ['lxc.net.0.type = empty'];
      log(`net: LXC container ${name} (cp -a of the tslxc rootfs)${p.nic ? ` with a veth on ${bridge.name}` : ''}`);
      await createLxcContainer(env, name, rootfs, net);
      peers.push({
        key: p.nic ? NET_KEYS.lxcNic : NET_KEYS.lxcNone,
        peer: lxcPeer(env, name, o.lxcVersion),
        nic: p.nic,
        subnet: p.nic ? bridge.subnet : undefined,
      });
    }
  }
  for (const p of peers) r.boot[p.key] = { runs: [], failures: [], states: {}, addresses: [] };

  // Warm-up (first boot: SSH host keys, machine-id ...): not counted, but it checks the set-up.
  for (const p of peers) {
    log(`net: ${p.key}: warm-up boot`);
    const first = await bootToRunning(p.peer, { ipv4: p.nic });
    const seen = await inspect(p.peer);
    r.warmup[p.key] = { firstBoot: first, ...seen };
    const want = p.nic ? 'eth0 lo' : 'lo';
    if (seen.interfaces.join(' ') !== want) throw new Error(`${p.key}: interfaces ${seen.interfaces.join(' ')}, expected ${want}`);
    if (p.nic) checkSubnet(p, first.ipv4);
    log(
      `net: ${p.key}: first boot ${Math.round(first.totalMs)} ms${first.ipv4Ms !== undefined ? `, IPv4 ${first.ipv4} at ${Math.round(first.ipv4Ms)} ms` : ''}, systemd ${first.state}`,
    );
    await cleanStop(p.peer);
    await pause(500);
  }

  for (let i = 0; i < o.runs; i++) {
    // Rotate who goes first, so drift on a busy machine spreads over all four.
    const order = peers.map((_, k) => peers[(k + i) % peers.length]);
    for (const p of order) {
      const b = r.boot[p.key];
      try {
        const res = await bootToRunning(p.peer, { ipv4: p.nic });
        if (p.nic) checkSubnet(p, res.ipv4);
        b.runs.push(res);
        b.states[res.state] = (b.states[res.state] ?? 0) + 1;
        if (res.ipv4 && !b.addresses.includes(res.ipv4)) b.addresses.push(res.ipv4);
        await pause(300);
        await cleanStop(p.peer);
        log(
          `net: ${p.key} run ${i + 1}/${o.runs}: start→${res.state} ${Math.round(res.totalMs)} ms (start cmd ${Math.round(res.startMs)} ms)${res.ipv4Ms !== undefined ? `, start→IPv4 ${Math.round(res.ipv4Ms)} ms` : ''}`,
        );
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        b.failures.push((e as Error).message);
        log(`net: ${p.key} run ${i + 1}: FAILED: ${(e as Error).message}`);
        await p.peer.kill().catch(() => undefined);
      }
      await pause(500);
    }
  }
  for (const p of peers) {
    const b = r.boot[p.key];
    b.total = summarize(b.runs.map((x) => x.totalMs));
    b.startCmd = summarize(b.runs.map((x) => x.startMs));
    if (p.nic) b.ipv4 = summarize(b.runs.map((x) => x.ipv4Ms).filter((x): x is number => x !== undefined));
  }
  // Every nic's host end must be gone with its container.
  for (const br of [network, r.lxcBridge].filter((x): x is string => !!x)) {
    const ports = bridgePorts(br);
    if (ports.length) r.notes.push(`ports still on ${br} after every container stopped: ${ports.join(' ')}`);
  }
  r.ipForward.after = readSysctl('net/ipv4/ip_forward');
  if (r.ipForward.after !== r.ipForward.before) r.notes.push(`net.ipv4.ip_forward changed from ${r.ipForward.before} to ${r.ipForward.after} during the run`);
  return r;
}

function checkSubnet(p: NetPeer, address: string | undefined): void {
  if (!address || !p.subnet) throw new Error(`${p.key}: no IPv4 address`);
  const prefix = p.subnet.split('/')[0].split('.').slice(0, 3).join('.') + '.';
  if (!address.split(' ').every((a) => a.startsWith(prefix))) throw new Error(`${p.key}: address ${address} is not in ${p.subnet}`);
}

/**
 * The LXC peer's bridge and its DHCP server: a /24 no route or address of the host uses, a
 * dnsmasq in the foreground as our child (config, leases and log under the bench's root) that
 * serves DHCP only (port=0: no DNS, so no query is ever forwarded off the host).
 */
async function makeLxcBridge(env: BenchEnv, log: (s: string) => void): Promise<{ name: string; subnet: string }> {
  const name = `tbb${env.id}`;
  const dir = path.join(env.root, 'lxc-net');
  fs.mkdirSync(dir, { mode: 0o700 });
  let dnsmasq: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let made = false;
  env.onCleanup(`bridge ${name}`, async (clog) => {
    const problems: string[] = [];
    if (dnsmasq && dnsmasq.exitCode === null && dnsmasq.signalCode === null) {
      dnsmasq.kill('SIGTERM');
      if (!(await Promise.race([exited!.then(() => true), sleep(5000).then(() => false)]))) {
        problems.push(`dnsmasq ${dnsmasq.pid} of ${name} ignored SIGTERM; killed`);
        dnsmasq.kill('SIGKILL');
      }
    }
    if (made && fs.existsSync(`/sys/class/net/${name}`)) {
      const ports = bridgePorts(name);
      if (ports.length) {
        problems.push(`links left on ${name}: ${ports.join(' ')}; deleted`);
        for (const p of ports) await run('ip', ['link', 'del', p], { duringCleanup: true });
      }
      clog(`cleanup: ip link del ${name}`);
      const d = await run('ip', ['link', 'del', name], { duringCleanup: true });
      if (d.code !== 0) problems.push(`ip link del ${name}: ${d.stderr.trim()}`);
    }
    return problems;
  });
  const third = await freeSubnet();
  const subnet = `10.${third}.0/24`;
  const gw = `10.${third}.1`;
  made = true;
  await runOk('ip', ['link', 'add', name, 'type', 'bridge']);
  await runOk('ip', ['addr', 'add', `${gw}/24`, 'dev', name]);
  await runOk('ip', ['link', 'set', name, 'up']);
  const conf = path.join(dir, 'dnsmasq.conf');
  fs.writeFileSync(
    conf,
    [
      '# tslxc bench: DHCP for the LXC peer on its own bridge (like lxc-net, but no DNS)',
      'user=root',
      'group=root',
      `interface=${name}`,
      'except-interface=lo',
      'bind-interfaces',
      'port=0',
      `listen-address=${gw}`,
      `dhcp-range=10.${third}.2,10.${third}.254,255.255.255.0,1h`,
      `dhcp-option=option:router,${gw}`,
      `dhcp-leasefile=${path.join(dir, 'leases')}`,
      'dhcp-authoritative',
      'dhcp-no-override',
      `log-facility=${path.join(dir, 'dnsmasq.log')}`,
      '',
    ].join('\n'),
  );
  log(`net: LXC bridge ${name} ${gw}/24 with a dnsmasq of the bench`);
  dnsmasq = spawn('dnsmasq', ['--keep-in-foreground', `--conf-file=${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  dnsmasq.stderr!.on('data', (d) => (err += d));
  exited = new Promise((resolve) => dnsmasq!.on('exit', () => resolve()));
  await sleep(300);
  if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq for ${name} exited: ${err.trim()}`);
  return { name, subnet };
}

/** A third octet pair "A.B" such that 10.A.B.0/24 overlaps no route or address of the host. */
async function freeSubnet(): Promise<string> {
  const routes = JSON.parse((await runOk('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])).stdout) as { dst: string }[];
  const addrs = JSON.parse((await runOk('ip', ['-j', '-4', 'addr'])).stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
  const used: [number, number][] = [];
  const add = (ip: string, len: number) => {
    const n = ipNum(ip);
    if (n === undefined) return;
    const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
    used.push([(n & mask) >>> 0, len]);
  };
  for (const r of routes) {
    if (r.dst === 'default') add('0.0.0.0', 0);
    else add(r.dst.split('/')[0], Number(r.dst.split('/')[1] ?? 32));
  }
  for (const a of addrs) for (const i of a.addr_info ?? []) add(i.local, i.prefixlen);
  for (let tries = 0; tries < 200; tries++) {
    const a = 200 + Math.floor(Math.random() * 50);
    const b = Math.floor(Math.random() * 256);
    const net = ipNum(`10.${a}.${b}.0`)!;
    // Overlap: either prefix contains the other; a default route (len 0) is not a conflict.
    const clash = used.some(([u, len]) => {
      if (len === 0) return false;
      const l = Math.min(len, 24);
      const mask = (~0 << (32 - l)) >>> 0;
      return (u & mask) >>> 0 === (net & mask) >>> 0;
    });
    if (!clash) return `${a}.${b}`;
  }
  throw new Error("no free /24 in 10.200.0.0-10.249.255.255 for the LXC peer's bridge");
}

function ipNum(ip: string): number | undefined {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** The bridge's IPv4 subnet, "10.1.2.0/24", from its address. */
async function bridgeSubnet(bridge: string): Promise<string> {
  const j = JSON.parse((await runOk('ip', ['-j', '-4', 'addr', 'show', 'dev', bridge])).stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
  const a = j[0]?.addr_info?.[0];
  if (!a) throw new Error(`bridge ${bridge} has no IPv4 address`);
  const mask = a.prefixlen === 0 ? 0 : (~0 << (32 - a.prefixlen)) >>> 0;
  const n = (ipNum(a.local)! & mask) >>> 0;
  return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${a.prefixlen}`;
}

export function bridgePorts(bridge: string): string[] {
  try {
    return fs.readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
}

function readSysctl(key: string): string {
  try {
    return fs.readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** A MAC in the 00:16:3e prefix LXC's templates use (lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx). */
function randomMac(): string {
  return ['00', '16', '3e', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
