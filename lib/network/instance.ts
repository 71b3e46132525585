import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { addressClaims, listNames, loadConfig, saveConfig, type InstanceConfig } from '../state/config.js';
import type { Device } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import { mkdirp, writeFileAtomic } from '../util/fs.js';
import { checkStaticAddress, parseProxyEnd, validateNic, validateProxy } from './devices.js';
import { dnsmasqIdentity, dropLeases, files as dnsFiles, hupDnsmasq, needsDnsmasq, parseLeases, readLeases } from './dnsmasq.js';
import { executeSteps, fileOp, type SpecOp } from '../state/spec.js';
import { containerRunDir } from '../state/paths.js';
import { ip, ipQuiet, ipTool, linkExists, portBound, systemTool } from './host.js';
import { Reverter } from '../util/revert.js';
import { contains, formatIp, hostRange, parseIp } from './ipv4.js';
import { createNetworkLocked, ensureNetworkUp, syncRuleset } from './manage.js';
import { hostVethName, nftTableName, randomHwaddr } from './names.js';
import {
  readAllStates,
  readState,
  releaseByFile,
  removeState,
  startHookFile,
  stateFile,
  stateText,
  stopHookFile,
  writeState,
  type NetState,
  type NicState,
  type ProxyState,
} from './state.js';
import { bridgeIpv4, DEFAULT_NETWORK, listNetworkNames, loadNetwork, mtuOf, networkExists, withNetworkLock, type NetworkDef } from './store.js';

/**
 * The seam between the container lifecycle and networking. start() calls prepareNetwork before
 * booting: it reserves each nic's address and hwaddr (kept in the container's config as
 * volatile.DEV.hwaddr / volatile.DEV.ipv4.address, so restarts and reboots keep them), tells the
 * network's dnsmasq (reservation and DNS name), installs proxy DNAT rules, and writes the two
 * hooks the monitor runs (native/README.md):
 *   start-host  at each boot, before init: create the veth pair with the container's end directly
 *               in the new network namespace (named as configured), the host end on the bridge;
 *   post-stop   after init ended: remove the host end; unless it is a reboot, release the rest
 *               (reservation, DNS name, lease, DNAT rules) by calling back into tslxc.
 * stop/delete call releaseNetwork too (for a monitor that died without its hook); a stop tells the
 * hook first that it will (releaseAfterStop), so the hook starts no node of its own. list/info read
 * addresses() from the dnsmasq lease file: no process is entered, so listing stays cheap.
 */
export interface NetworkPlan {
  startHostHook?: string;
  postStopHook?: string;
  /** the steps of the start spec that published it (files, dnsmasq told), executed under the networks' lock */
  steps: SpecOp[];
  undo(): Promise<void>;
}

const cliPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/tslxc.js');
const volatileHw = (dev: string) => `volatile.${dev}.hwaddr`;
const volatileIp = (dev: string) => `volatile.${dev}.ipv4.address`;

/** A container's network devices, sorted by name: lib/device's nic and proxy modules say which is which. */
export interface NetworkDevices {
  nics: Array<[string, Device]>;
  proxies: Array<[string, Device]>;
}

/** Their keys again (a profile may have changed since they were added), without host checks. */
function validateDevices(p: Paths, devs: NetworkDevices): void {
  for (const [name, d] of devs.nics) validateNic(name, d, p, { checkHost: false });
  for (const [name, d] of devs.proxies) validateProxy(name, d, { checkHost: false });
}

export async function prepareNetwork(ctx: Context, cfg: InstanceConfig, devs: NetworkDevices): Promise<NetworkPlan> {
  const p = ctx.paths;
  const nothing: NetworkPlan = { steps: [], undo: async () => {} };
  if (devs.nics.length === 0 && devs.proxies.length === 0) return nothing;
  validateDevices(p, devs);
  const undo = () => releaseNetwork(ctx, cfg.name);
  return withNetworkLock(p, async () => {
    try {
      return await prepareLocked(p, cfg, devs, undo);
    } catch (err) {
      await releaseLocked(p, cfg.name).catch(() => {});
      throw err;
    }
  });
}

async function prepareLocked(p: Paths, cfg: InstanceConfig, devs: NetworkDevices, undo: () => Promise<void>): Promise<NetworkPlan> {
  const { state, changed } = await planLocked(p, cfg, devs, `Cannot start "${cfg.name}"`);
  if (changed) saveConfig(p, cfg);
  const runDir = containerRunDir(p, cfg.name);
  mkdirp(path.dirname(runDir), 0o700);
  // The files are the claim other starts read (addressesInUse): written before the lock goes, by
  // the executor of the start spec (state/spec.ts), as a saved plan writes them.
  const steps = publishSteps(p, cfg.name, state);
  try {
    await executeSteps(runDir, steps);
  } catch (err) {
    throw new TslxcError(`Cannot start "${cfg.name}"`, `cannot publish its network: ${(err as Error).message}`);
  }
  // nft rules are the whole table's, rebuilt from every container's state: not a step of one start.
  if (state.proxies.length) syncRuleset(p);
  return { startHostHook: startHookFile(p, cfg.name), postStopHook: stopHookFile(p, cfg.name), steps, undo };
}

/** publishLocked for a start (nothing published before), as steps of the start spec. */
function publishSteps(p: Paths, name: string, state: NetState): SpecOp[] {
  const { nics } = state;
  const steps: SpecOp[] = [fileOp({ path: stateFile(p, name), mode: 0o600, data: stateText(state) })];
  for (const netName of new Set(nics.map((n) => n.network).filter(Boolean) as string[])) {
    const f = dnsFiles(p, netName);
    const mine = nics.filter((n) => n.network === netName && n.ipv4);
    // The container's name goes to its first nic on the network; more nics there get addresses only.
    const dhcp = mine.map((n, i) => `${n.hwaddr},${n.ipv4}${i === 0 ? `,${name}` : ''}\n`).join('');
    steps.push(fileOp({ path: path.join(f.dhcpHosts, name), mode: 0o600, data: dhcp }));
    steps.push(fileOp({ path: path.join(f.hosts, name), mode: 0o600, data: mine.length ? `${mine[0].ipv4} ${name}\n` : '' }));
    // A network serving no address runs no dnsmasq: nothing to tell.
    if (!needsDnsmasq(loadNetwork(p, netName))) continue;
    const ours = dnsmasqIdentity(f.conf);
    steps.push(['hup', f.pid, ours.program, ours.arg]);
  }
  steps.push(fileOp({ path: startHookFile(p, name), mode: 0o700, data: renderStartHook(name, nics) }));
  steps.push(fileOp({ path: stopHookFile(p, name), mode: 0o700, data: renderStopHook(p, name, nics) }));
  return steps;
}

/**
 * What the container's nics and proxies are on the host: addresses and hwaddrs reserved (kept in
 * cfg.config as volatile keys; `changed` says whether they moved), networks up. Nothing written.
 */
async function planLocked(p: Paths, cfg: InstanceConfig, devs: NetworkDevices, what: string): Promise<{ state: NetState; changed: boolean }> {
  const nics: NicState[] = [];
  const nets = new Map<string, NetworkDef>();
  // The container's own leases are not "in use by another": a running container being changed
  // live holds leases for its nics, and their addresses stay its own.
  const own = new Set([
    ...Object.entries(cfg.config)
      .filter(([k]) => /^volatile\..+\.hwaddr$/.test(k))
      .map(([, v]) => v.toLowerCase()),
    ...(devs.nics.map(([, d]) => d.hwaddr?.toLowerCase()).filter(Boolean) as string[]),
  ]);
  const inUse = addressesInUse(p, cfg.name, own);
  let changed = false;
  const setVolatile = (k: string, v: string) => {
    if (cfg.config[k] !== v) {
      cfg.config[k] = v;
      changed = true;
    }
  };
  for (const [dev, d] of devs.nics) {
    const nic: NicState = { device: dev, name: d.name ?? dev, host: hostVethName(p.stateDir, cfg.name, dev), hwaddr: '', static: false };
    if (d.mtu) nic.mtu = Number(d.mtu);
    if (d.hwaddr) nic.hwaddr = d.hwaddr.toLowerCase();
    else {
      nic.hwaddr = cfg.config[volatileHw(dev)] ?? randomHwaddr();
      setVolatile(volatileHw(dev), nic.hwaddr);
    }
    if (nics.some((n) => n.name === nic.name)) throw new TslxcError(what, `two nics are named "${nic.name}" inside`);
    if (d.parent) {
      if (!fs.existsSync(`/sys/class/net/${d.parent}/bridge`)) throw new TslxcError(what, `nic "${dev}": parent "${d.parent}" is not a bridge on this host`);
      nic.parent = d.parent;
      nics.push(nic);
      continue;
    }
    const netName = d.network!;
    let net = nets.get(netName);
    if (!net) {
      if (!networkExists(p, netName)) {
        if (netName !== DEFAULT_NETWORK)
          throw new TslxcError(what, `nic "${dev}": network "${netName}" does not exist`, `create it with "tslxc network create ${netName}"`);
        await createNetworkLocked(p, netName, {}, 'Default tslxc network');
      }
      net = loadNetwork(p, netName);
      await ensureNetworkUp(p, net);
      nets.set(netName, net);
    }
    nic.network = netName;
    nic.mtu ??= mtuOf(net);
    const subnet = bridgeIpv4(net);
    if (subnet) {
      let addr: string | undefined;
      if (d['ipv4.address']) {
        checkStaticAddress(dev, d['ipv4.address'], netName, subnet);
        addr = formatIp(parseIp(d['ipv4.address'])!);
        const holder = inUse.get(addr);
        if (holder) throw new TslxcError(what, `nic "${dev}": ipv4.address ${addr} is already taken by ${holder}`, 'pick another address');
        nic.static = true;
      } else {
        const vol = cfg.config[volatileIp(dev)];
        const v = vol ? parseIp(vol) : undefined;
        const [first, last] = hostRange(subnet);
        if (vol && v !== undefined && contains(subnet, v) && v >= first && v <= last && v !== subnet.addr && !inUse.has(vol)) addr = vol;
        else {
          for (let n = first; n <= last; n++) {
            if (n !== subnet.addr && !inUse.has(formatIp(n))) {
              addr = formatIp(n);
              break;
            }
          }
          if (!addr) throw new TslxcError(what, `network "${netName}" has no free address left`);
        }
      }
      setVolatile(volatileIp(dev), addr);
      inUse.set(addr, `container ${cfg.name}`);
      nic.ipv4 = addr;
    }
    nics.push(nic);
  }

  const proxies: ProxyState[] = [];
  const others = readAllStates(p).filter((s) => s.name !== cfg.name);
  for (const [dev, d] of devs.proxies) {
    const listen = parseProxyEnd(d.listen, 'listen', dev);
    const connect = parseProxyEnd(d.connect, 'connect', dev);
    const target = d.nic
      ? nics.find((n) => n.device === d.nic)
      : connect.addr === '127.0.0.1' || connect.addr === '0.0.0.0'
        ? nics.find((n) => n.ipv4)
        : nics.find((n) => n.ipv4 === connect.addr);
    if (!target?.ipv4 || !target.network) {
      throw new TslxcError(
        what,
        `proxy "${dev}" needs a nic on a managed network to forward to`,
        d.nic ? `nic "${d.nic}" has none` : 'give the container a nic with network=NAME',
      );
    }
    if (portBound(listen.proto, listen.port, listen.addr))
      throw new TslxcError(what, `proxy "${dev}": ${listen.proto} port ${listen.port} is already in use on the host`, 'pick another listen port');
    const clash = [
      ...others.flatMap((o) => o.state.proxies.map((x) => ({ who: `container ${o.name}`, x }))),
      ...proxies.map((x) => ({ who: 'another proxy of this container', x })),
    ].find(
      ({ x }) =>
        x.proto === listen.proto && x.listenPort === listen.port && (x.listenAddr === listen.addr || x.listenAddr === '0.0.0.0' || listen.addr === '0.0.0.0'),
    );
    if (clash)
      throw new TslxcError(what, `proxy "${dev}": ${listen.proto} port ${listen.port} is already forwarded by ${clash.who}`, 'pick another listen port');
    proxies.push({
      device: dev,
      proto: listen.proto,
      listenAddr: listen.addr,
      listenPort: listen.port,
      targetAddr: target.ipv4,
      targetPort: connect.port,
      bridge: target.network,
    });
  }

  return { state: { nics, proxies }, changed };
}

/**
 * Tell the host what the container's network now is: its state file (what release removes),
 * each network's dnsmasq reservations and DNS name (and none on networks it left), the nft
 * table, and the two hooks (rewritten, so a reboot and the final stop act on today's nics).
 */
function publishLocked(p: Paths, name: string, state: NetState, previous?: NetState): void {
  const { nics, proxies } = state;
  // As publishSteps, for a running container's changes (not replayed).
  writeState(p, name, state);
  const networks = new Set(nics.map((n) => n.network).filter(Boolean) as string[]);
  for (const netName of networks) {
    const f = dnsFiles(p, netName);
    const mine = nics.filter((n) => n.network === netName && n.ipv4);
    // The container's name goes to its first nic on the network; more nics there get addresses only.
    const dhcp = mine.map((n, i) => `${n.hwaddr},${n.ipv4}${i === 0 ? `,${name}` : ''}\n`).join('');
    writeFileAtomic(path.join(f.dhcpHosts, name), dhcp, 0o600);
    writeFileAtomic(path.join(f.hosts, name), mine.length ? `${mine[0].ipv4} ${name}\n` : '', 0o600);
    hupDnsmasq(p, netName);
  }
  for (const netName of new Set((previous?.nics ?? []).map((n) => n.network).filter(Boolean) as string[])) {
    if (networks.has(netName)) continue;
    const f = dnsFiles(p, netName);
    fs.rmSync(path.join(f.dhcpHosts, name), { force: true });
    fs.rmSync(path.join(f.hosts, name), { force: true });
    if (networkExists(p, netName)) hupDnsmasq(p, netName);
  }
  if (proxies.length || previous?.proxies.length) syncRuleset(p);
  writeFileAtomic(startHookFile(p, name), renderStartHook(name, nics), 0o700);
  writeFileAtomic(stopHookFile(p, name), renderStopHook(p, name, nics), 0o700);
}

const sameNic = (a: NicState, b: NicState) => JSON.stringify(a) === JSON.stringify(b);

/** A veth pair for a running container: the host end on its bridge, the other end made in init's network namespace, named, addressed and up. */
function addVeth(n: NicState, initPid: number, what: string): void {
  const mtu = n.mtu ? ['mtu', String(n.mtu)] : [];
  if (linkExists(n.host)) ipQuiet(['link', 'del', n.host]);
  ip(
    ['link', 'add', n.host, ...mtu, 'type', 'veth', 'peer', 'name', n.name, 'address', n.hwaddr, ...mtu, 'netns', String(initPid)],
    `${what}: cannot add nic "${n.device}"`,
  );
  try {
    ip(['link', 'set', n.host, 'master', n.network ?? n.parent!, 'up'], `${what}: cannot put nic "${n.device}" on ${n.network ?? n.parent}`);
    // Up inside too (a moved link arrives down); only the network namespace is entered, and
    // the host's ip binary runs there: nothing of the container's filesystem is used.
    const nsenter = systemTool('nsenter', "enter a container's network namespace");
    const r = spawnSync(nsenter, [`--net=/proc/${initPid}/ns/net`, ipTool(), 'link', 'set', n.name, 'up'], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new TslxcError(
        `${what}: cannot bring nic "${n.device}" up inside`,
        (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-1)[0],
      );
  } catch (err) {
    ipQuiet(['link', 'del', n.host]);
    throw err;
  }
}

/**
 * A running container's nics and proxies brought to what `devs` (of its new expanded set) says:
 * nics that went or changed lose their veth, their reservation, DNS name and lease; new or
 * changed ones get a veth in the container's network namespace (systemd-networkd inside then
 * does DHCP); proxies follow in the nft table. New volatile keys go into cfg.config (the caller
 * saves it). A failure puts everything back and throws; the returned function undoes a success
 * (when a later step of the caller fails).
 */
export async function applyNetworkLive(ctx: Context, cfg: InstanceConfig, devs: NetworkDevices, initPid: number): Promise<() => Promise<void>> {
  const p = ctx.paths;
  const what = `Cannot change the network of running container "${cfg.name}"`;
  validateDevices(p, devs);
  return withNetworkLock(p, async () => {
    const old = readState(p, cfg.name) ?? { nics: [], proxies: [] };
    const { state } = await planLocked(p, cfg, devs, what);
    const removed = old.nics.filter((o) => !state.nics.some((n) => sameNic(n, o)));
    const added = state.nics.filter((n) => !old.nics.some((o) => sameNic(o, n)));
    const revert = new Reverter();
    try {
      for (const n of removed) {
        ipQuiet(['link', 'del', n.host]);
        revert.add(() => addVeth(n, initPid, what));
      }
      for (const n of added) {
        addVeth(n, initPid, what);
        revert.add(() => ipQuiet(['link', 'del', n.host]));
      }
      mkdirp(path.dirname(startHookFile(p, cfg.name)), 0o700);
      revert.add(() => publishLocked(p, cfg.name, old, state));
      publishLocked(p, cfg.name, state, old);
    } catch (err) {
      await revert.revert();
      throw err;
    }
    await dropLeasesOf(
      p,
      removed.filter((o) => !state.nics.some((n) => n.hwaddr === o.hwaddr)),
    );
    return () => withNetworkLock(p, () => revert.revert());
  });
}

async function dropLeasesOf(p: Paths, nics: NicState[]): Promise<void> {
  for (const netName of new Set(nics.map((n) => n.network).filter(Boolean) as string[])) {
    if (!networkExists(p, netName)) continue;
    await dropLeases(
      p,
      loadNetwork(p, netName),
      nics.filter((n) => n.network === netName).map((n) => n.hwaddr),
    ).catch(() => {});
  }
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function renderStartHook(name: string, nics: NicState[]): string {
  const ipBin = ipTool();
  const lines = [
    '#!/bin/sh',
    `# Generated by tslxc for container ${name}; its monitor runs it at each boot before init`,
    '# (TSLXC_INIT_PID is set): each nic is a veth pair, the container end made directly in its',
    '# network namespace under its final name, the host end on the bridge.',
    'set -e',
    `ip=${q(ipBin)}`,
  ];
  for (const n of nics) {
    const mtu = n.mtu ? ['mtu', String(n.mtu)] : [];
    lines.push(
      `"$ip" link del ${n.host} 2>/dev/null || true`,
      `"$ip" link add ${n.host} ${mtu.join(' ')} type veth peer name ${q(n.name)} address ${n.hwaddr} ${mtu.join(' ')} netns "$TSLXC_INIT_PID"`,
      `"$ip" link set ${n.host} master ${q(n.network ?? n.parent!)} up`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * The shell line a hook the monitor runs ends with to call back into tslxc on this installation's
 * state (the monitor's environment is that of whoever started it, which need not name it).
 */
export function callbackLine(p: Paths, args: string[]): string {
  const env = [
    `TSLXC_DIR=${q(p.stateDir)}`,
    `TSLXC_RUN_DIR=${q(p.runDir)}`,
    `TSLXC_CACHE_DIR=${q(p.cacheDir)}`,
    `TSLXC_CGROUP_PREFIX=${q(p.cgroupPrefix)}`,
    `TSLXC_NFT_TABLE=${q(nftTableName(p))}`,
  ];
  return `exec /usr/bin/env ${env.join(' ')} ${q(process.execPath)} ${q(cliPath)} ${args.map(q).join(' ')}`;
}

export function renderStopHook(p: Paths, name: string, nics: NicState[]): string {
  return (
    [
      '#!/bin/sh',
      `# Generated by tslxc for container ${name}; its monitor runs it after init ended (TSLXC_REASON).`,
      ...nics.map((n) => `${q(ipTool())} link del ${n.host} 2>/dev/null`),
      '# A reboot keeps the address, the DNS name and the forwards: the start hook makes new veths.',
      '[ "$TSLXC_REASON" = reboot ] && exit 0',
      '# A CLI that stops the container releases the rest itself when the monitor (our parent) is gone',
      '# (a second node process would only make the stop wait): it says so while it is alive.',
      `{ read -r monitor cli < ${q(releaseByFile(p, name))}; } 2>/dev/null && [ "$monitor" = "$PPID" ] && kill -0 "$cli" 2>/dev/null && exit 0`,
      callbackLine(p, ['network', 'release-instance', name]),
    ].join('\n') + '\n'
  );
}

/**
 * Addresses held by other containers of this installation (their reservations, kept while they
 * exist, and static addresses of never-started ones) and leases of unknown clients: address →
 * who has it.
 */
function addressesInUse(p: Paths, self: string, ownHwaddrs: Set<string> = new Set()): Map<string, string> {
  const out = new Map<string, string>();
  for (const ct of listNames(p)) {
    if (ct === self) continue;
    let cfg: InstanceConfig;
    try {
      cfg = loadConfig(p, ct);
    } catch {
      continue;
    }
    for (const a of addressClaims(cfg)) out.set(a, `container ${ct}`);
  }
  for (const n of listNetworkNames(p)) {
    for (const l of readLeases(p, n)) if (!out.has(l.ipv4) && !ownHwaddrs.has(l.hwaddr.toLowerCase())) out.set(l.ipv4, `a DHCP lease of ${l.hwaddr}`);
  }
  return out;
}

/**
 * A CLI about to stop a running container (its monitor: monitorPid) takes over the release from
 * the post-stop hook: it calls releaseNetwork once the monitor is gone. Should the CLI die first,
 * the hook releases as usual.
 */
export function releaseAfterStop(ctx: Context, name: string, monitorPid: number): void {
  if (readState(ctx.paths, name)) writeFileAtomic(releaseByFile(ctx.paths, name), `${monitorPid} ${process.pid}\n`, 0o600);
}

/** After a container stopped for good (or was found dead): remove whatever its nics left on the host. */
export async function releaseNetwork(ctx: Context, name: string): Promise<void> {
  if (!readState(ctx.paths, name)) {
    fs.rmSync(releaseByFile(ctx.paths, name), { force: true });
    return;
  }
  await withNetworkLock(ctx.paths, () => releaseLocked(ctx.paths, name));
}

async function releaseLocked(p: Paths, name: string): Promise<void> {
  const st = readState(p, name);
  if (!st) return;
  for (const n of st.nics) if (linkExists(n.host)) ipQuiet(['link', 'del', n.host]);
  for (const netName of new Set(st.nics.map((n) => n.network).filter(Boolean) as string[])) {
    const f = dnsFiles(p, netName);
    const exists = networkExists(p, netName);
    // The lease first, then the reservation and the name: dropLeases makes sure the lease is gone
    // (a lease outliving its reservation keeps the address from the next container given it).
    try {
      if (exists)
        await dropLeases(
          p,
          loadNetwork(p, netName),
          st.nics.filter((n) => n.network === netName).map((n) => n.hwaddr),
        );
    } finally {
      fs.rmSync(path.join(f.dhcpHosts, name), { force: true });
      fs.rmSync(path.join(f.hosts, name), { force: true });
      if (exists) hupDnsmasq(p, netName);
    }
  }
  removeState(p, name);
  if (st.proxies.length) syncRuleset(p);
}

/** When a container is deleted: forget its leases too (its reservations go with its config). */
export async function forgetNetwork(ctx: Context, name: string): Promise<void> {
  await releaseNetwork(ctx, name);
  let macs: string[] = [];
  try {
    macs = Object.entries(loadConfig(ctx.paths, name).config ?? {})
      .filter(([k]) => /^volatile\..+\.hwaddr$/.test(k))
      .map(([, v]) => v);
  } catch {
    return;
  }
  if (!macs.length) return;
  const p = ctx.paths;
  const held = listNetworkNames(p).filter((n) => readLeases(p, n).some((l) => macs.includes(l.hwaddr)));
  if (!held.length) return;
  await withNetworkLock(p, async () => {
    for (const n of held) await dropLeases(p, loadNetwork(p, n), macs);
  });
}

/** By mtime and size: a rewrite within one timestamp tick (truncate, then write) still changes the size. */
const leaseCache = new Map<string, { mtimeMs: number; size: number; leases: ReturnType<typeof parseLeases> }>();
function cachedLeases(p: Paths, network: string) {
  const file = dnsFiles(p, network).leases;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return [];
  }
  const hit = leaseCache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.leases;
  const leases = parseLeases(fs.readFileSync(file, 'utf8'));
  leaseCache.set(file, { mtimeMs: st.mtimeMs, size: st.size, leases });
  return leases;
}

/** The container's IPv4 addresses (for list/info/wait --ip): those dnsmasq has leased to its nics. */
export async function addresses(ctx: Context, name: string): Promise<string[]> {
  const st = readState(ctx.paths, name);
  if (!st) return [];
  const out: string[] = [];
  for (const n of st.nics) {
    if (!n.network) continue;
    const l = cachedLeases(ctx.paths, n.network).find((x) => x.hwaddr === n.hwaddr);
    if (l) out.push(l.ipv4);
  }
  return out;
}

/** A running container's nic as the API's instance state shows it (lib/api/shapes/instance.ts). */
export interface NicStatus {
  /** the name inside the container */
  name: string;
  /** the host end of the veth pair */
  host: string;
  hwaddr: string;
  mtu: number;
  /** leased by dnsmasq; a nic on a network shows none until its lease */
  ipv4?: string;
  /** the network's prefix length, for the address's netmask */
  prefix?: number;
}

/** Each nic of a running container, from its network state and the leases: no process is entered. */
export function nicStatuses(ctx: Context, name: string): NicStatus[] {
  const st = readState(ctx.paths, name);
  if (!st) return [];
  return st.nics.map((n) => {
    const out: NicStatus = { name: n.name, host: n.host, hwaddr: n.hwaddr, mtu: n.mtu ?? 1500 };
    if (!n.network) return out;
    const lease = cachedLeases(ctx.paths, n.network).find((x) => x.hwaddr === n.hwaddr);
    if (!lease) return out;
    out.ipv4 = lease.ipv4;
    try {
      out.prefix = bridgeIpv4(loadNetwork(ctx.paths, n.network))?.prefix;
    } catch {
      /* the network went away while the container runs: the address without its mask */
    }
    return out;
  });
}
