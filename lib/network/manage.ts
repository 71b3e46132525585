import fs from 'node:fs';
import { TslxcError } from '../errors.js';
import type { Paths } from '../state/paths.js';
import { Reverter } from '../util/revert.js';
import { listNames, loadConfig } from '../state/config.js';
import { expandInstance } from '../profile/expand.js';
import { listProfiles } from '../profile/store.js';
import { dnsmasqPid, dnsmasqStale, files as dnsFiles, needsDnsmasq, prepareFiles, readLeases, startDnsmasq, stopDnsmasq, type Lease } from './dnsmasq.js';
import { ip, ipQuiet, linkExists, readSysctl, usedSubnets, writeSysctl } from './host.js';
import { formatCidr, overlaps, pickFreeSubnet, randomUla, subnetString, type Cidr } from './ipv4.js';
import { nftTableName, stableHwaddr, validateNetworkName } from './names.js';
import { applyRuleset, renderRuleset, type NftNetwork, type NftProxy } from './nft.js';
import { readAllStates } from './state.js';
import {
  bridgeIpv4,
  ipv6Of,
  listNetworkNames,
  loadNetwork,
  mtuOf,
  natOf,
  networkExists,
  networkRunDir,
  removeNetworkFile,
  saveNetwork,
  validateNetworkKey,
  withNetworkLock,
  type NetworkDef,
} from './store.js';

/** Managed networks: create, change, bring up (bridge, dnsmasq, nft), tear down. */

/** Resolve `auto` and check the subnet against the host and the other networks. */
function resolveConfig(p: Paths, name: string, config: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) out[k] = validateNetworkKey(k, v);
  out['ipv4.address'] ??= 'auto';
  out['ipv4.nat'] ??= 'true';
  const others: Array<Cidr & { where: string }> = [...usedSubnets(name)];
  for (const n of listNetworkNames(p)) {
    if (n === name) continue;
    const c = bridgeIpv4(loadNetwork(p, n));
    if (c) others.push({ ...c, where: `network "${n}"` });
  }
  if (out['ipv4.address'] === 'auto') {
    const c = pickFreeSubnet(others);
    if (!c) throw new TslxcError(`Cannot create network "${name}"`, 'no free /24 left in 10.0.0.0/8', 'give ipv4.address=ADDRESS/PREFIX');
    out['ipv4.address'] = formatCidr(c);
  } else if (out['ipv4.address'] !== 'none') {
    const c = bridgeIpv4({ name, description: '', config: out })!;
    const clash = others.find((o) => overlaps(o, c));
    if (clash) {
      throw new TslxcError(
        `Invalid value for "ipv4.address": "${out['ipv4.address']}"`,
        `subnet ${subnetString(c)} overlaps ${clash.where}`,
        'pick another subnet or "auto"',
      );
    }
  }
  if (out['ipv6.address'] === 'auto') out['ipv6.address'] = randomUla();
  return out;
}

export async function createNetwork(p: Paths, name: string, config: Record<string, string>, description = ''): Promise<NetworkDef> {
  validateNetworkName(name);
  return withNetworkLock(p, () => createNetworkLocked(p, name, config, description));
}

export async function createNetworkLocked(p: Paths, name: string, config: Record<string, string>, description = ''): Promise<NetworkDef> {
  {
    if (networkExists(p, name)) throw new TslxcError(`Network "${name}" already exists`, undefined, undefined, { kind: 'conflict' });
    if (linkExists(name))
      throw new TslxcError(`Cannot create network "${name}"`, `the host already has an interface named "${name}"`, 'pick another name', { kind: 'conflict' });
    const net: NetworkDef = { name, description, config: resolveConfig(p, name, config) };
    await Reverter.run(async (revert) => {
      saveNetwork(p, net);
      revert.add(() => removeNetworkFile(p, name));
      revert.add(() => teardown(p, name));
      await bringUp(p, net);
    });
    return net;
  }
}

/** Make the network's host side match its config: bridge, addresses, dnsmasq, nft. Call under the lock. */
export async function bringUp(p: Paths, net: NetworkDef): Promise<void> {
  const br = net.name;
  const what = `Cannot set up bridge "${br}"`;
  if (!linkExists(br)) {
    ip(['link', 'add', br, 'address', stableHwaddr(`bridge\0${p.stateDir}\0${br}`), 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0'], what);
  } else if (!fs.existsSync(`/sys/class/net/${br}/bridge`)) {
    throw new TslxcError(what, `"${br}" exists on the host and is not a bridge`);
  }
  ip(['link', 'set', br, 'mtu', String(mtuOf(net)), 'up'], what);
  const want = [bridgeIpv4(net) ? formatCidr(bridgeIpv4(net)!) : undefined, ipv6Of(net)].filter(Boolean) as string[];
  const have = (JSON.parse(ip(['-j', 'addr', 'show', 'dev', br], what))[0]?.addr_info ?? []) as Array<{ local: string; prefixlen: number; scope: string }>;
  for (const a of have) {
    const s = `${a.local}/${a.prefixlen}`;
    if (a.scope === 'global' && !want.includes(s)) ip(['addr', 'del', s, 'dev', br], what);
  }
  for (const s of want)
    if (!have.some((a) => `${a.local}/${a.prefixlen}` === s)) ip(['addr', 'add', s, 'dev', br, ...(s.includes(':') ? ['nodad'] : [])], what);
  if (ipv6Of(net)) writeSysctl(`net.ipv6.conf.${br}.disable_ipv6`, '0');
  if (natOf(net) && bridgeIpv4(net) && readSysctl('net.ipv4.ip_forward') !== '1') {
    // NAT needs forwarding; this is the one host-wide setting tslxc changes (and only for ipv4.nat).
    writeSysctl('net.ipv4.ip_forward', '1');
  }
  if (dnsmasqPid(p, net.name) && (dnsmasqStale(p, net) || !needsDnsmasq(net))) await stopDnsmasq(p, net.name);
  if (!needsDnsmasq(net)) prepareFiles(p, net);
  else if (!dnsmasqPid(p, net.name)) startDnsmasq(p, net);
  syncRuleset(p);
}

/** Before anything uses a network: recreate what died (dnsmasq, the bridge after a host reboot). */
export async function ensureNetworkUp(p: Paths, net: NetworkDef): Promise<void> {
  if (linkExists(net.name) && !dnsmasqStale(p, net) && (!needsDnsmasq(net) || dnsmasqPid(p, net.name))) return;
  await bringUp(p, net);
}

async function teardown(p: Paths, name: string): Promise<void> {
  await stopDnsmasq(p, name);
  if (linkExists(name)) ipQuiet(['link', 'del', name]);
  fs.rmSync(networkRunDir(p, name), { recursive: true, force: true });
}

/** Rebuild tslxc's nft table from the networks and the running containers' proxies. */
export function syncRuleset(p: Paths): void {
  const networks: NftNetwork[] = [];
  const proxies: NftProxy[] = [];
  for (const st of readAllStates(p)) {
    for (const x of st.state.proxies) {
      proxies.push({
        comment: `${st.name}/${x.device}`,
        proto: x.proto,
        listenAddr: x.listenAddr,
        listenPort: x.listenPort,
        targetAddr: x.targetAddr,
        targetPort: x.targetPort,
        bridge: x.bridge,
      });
    }
  }
  for (const n of listNetworkNames(p)) {
    const net = loadNetwork(p, n);
    if (!linkExists(n)) continue;
    const localnet = proxies.some((x) => x.bridge === n && (x.listenAddr === '0.0.0.0' || x.listenAddr.startsWith('127.')));
    // A proxy reached from the host's loopback leaves through the bridge with source 127.0.0.1,
    // which the kernel only routes with route_localnet; the guard chain keeps containers from
    // using it to reach the host's loopback services.
    if ((readSysctl(`net.ipv4.conf.${n}.route_localnet`) === '1') !== localnet) writeSysctl(`net.ipv4.conf.${n}.route_localnet`, localnet ? '1' : '0');
    networks.push({ bridge: n, subnet: bridgeIpv4(net), nat: natOf(net), localnet });
  }
  applyRuleset(renderRuleset(nftTableName(p), networks, proxies));
}

/** Who uses a network: containers (their expanded devices) and profiles. */
export function usedBy(p: Paths, name: string): string[] {
  const out: string[] = [];
  for (const ct of listNames(p)) {
    try {
      const cfg = loadConfig(p, ct);
      const ex = expandInstance(p, cfg);
      if (Object.values(ex.devices).some((d) => d.type === 'nic' && d.network === name)) out.push(`container ${ct}`);
    } catch {
      /* a broken container does not hold a network */
    }
  }
  for (const prof of listProfiles(p)) {
    if (Object.values(prof.devices).some((d) => d.type === 'nic' && d.network === name)) out.push(`profile ${prof.name}`);
  }
  return out;
}

/** Containers running with a nic on this network right now. */
export function runningOn(p: Paths, name: string): string[] {
  return readAllStates(p)
    .filter((s) => s.state.nics.some((n) => n.network === name))
    .map((s) => s.name);
}

export async function deleteNetwork(p: Paths, name: string): Promise<void> {
  validateNetworkName(name);
  await withNetworkLock(p, async () => {
    loadNetwork(p, name);
    const users = [...new Set([...usedBy(p, name), ...runningOn(p, name).map((c) => `container ${c}`)])];
    if (users.length)
      throw new TslxcError(
        `Cannot delete network "${name}"`,
        `it is in use by ${users.slice(0, 5).join(', ')}${users.length > 5 ? ` and ${users.length - 5} more` : ''}`,
        'remove those nics first',
        { kind: 'conflict' },
      );
    removeNetworkFile(p, name);
    await teardown(p, name);
    syncRuleset(p);
  });
}

export async function updateNetwork(p: Paths, name: string, change: (net: NetworkDef) => void): Promise<NetworkDef> {
  validateNetworkName(name);
  return withNetworkLock(p, async () => {
    const old = loadNetwork(p, name);
    const net: NetworkDef = { name, description: old.description, config: { ...old.config } };
    change(net);
    for (const k of ['ipv4.address']) {
      if (net.config[k] === undefined) throw new TslxcError(`Cannot unset "${k}" of network "${name}"`, undefined, `set it to "none" or "auto" instead`);
    }
    net.config = resolveConfig(p, name, net.config);
    const running = runningOn(p, name);
    if (running.length && net.config['ipv4.address'] !== old.config['ipv4.address']) {
      throw new TslxcError(`Cannot change the subnet of network "${name}"`, `containers run on it: ${running.slice(0, 5).join(', ')}`, 'stop them first');
    }
    saveNetwork(p, net);
    try {
      await bringUp(p, net);
    } catch (err) {
      saveNetwork(p, old);
      await bringUp(p, old).catch(() => {});
      throw err;
    }
    return net;
  });
}

export async function renameNetwork(p: Paths, from: string, to: string): Promise<void> {
  validateNetworkName(from);
  validateNetworkName(to);
  await withNetworkLock(p, async () => {
    const net = loadNetwork(p, from);
    if (networkExists(p, to)) throw new TslxcError(`Cannot rename network "${from}"`, `a network "${to}" already exists`);
    if (linkExists(to)) throw new TslxcError(`Cannot rename network "${from}"`, `the host already has an interface named "${to}"`);
    const users = usedBy(p, from);
    if (users.length) throw new TslxcError(`Cannot rename network "${from}"`, `it is in use by ${users.slice(0, 5).join(', ')}`, 'remove those nics first');
    await teardown(p, from);
    removeNetworkFile(p, from);
    const renamed = { ...net, name: to };
    saveNetwork(p, renamed);
    await bringUp(p, renamed);
  });
}

export interface NetworkSummary {
  name: string;
  description: string;
  ipv4?: string;
  ipv6?: string;
  nat: boolean;
  domain: string;
  mtu: number;
  state: 'up' | 'down' | 'degraded';
  dnsmasqPid?: number;
  usedBy: string[];
  running: string[];
  config: Record<string, string>;
}

export function summarize(p: Paths, name: string): NetworkSummary {
  const net = loadNetwork(p, name);
  const pid = needsDnsmasq(net) ? dnsmasqPid(p, name) : undefined;
  const up = linkExists(name);
  return {
    name,
    description: net.description,
    ipv4: bridgeIpv4(net) ? formatCidr(bridgeIpv4(net)!) : undefined,
    ipv6: ipv6Of(net),
    nat: natOf(net),
    domain: net.config['dns.domain'] || 'tslxc',
    mtu: mtuOf(net),
    // Without an address to serve, the bridge alone is the network.
    state: !needsDnsmasq(net) ? (up ? 'up' : 'down') : up && pid ? 'up' : up || pid ? 'degraded' : 'down',
    dnsmasqPid: pid,
    usedBy: usedBy(p, name),
    running: runningOn(p, name),
    config: net.config,
  };
}

export interface LeaseRow extends Lease {
  container?: string;
  type: 'static' | 'reserved' | 'dynamic';
}

/** Leases dnsmasq handed out, matched to containers by hwaddr. */
export function listLeases(p: Paths, name: string): LeaseRow[] {
  loadNetwork(p, name);
  const byMac = new Map<string, { container: string; isStatic: boolean }>();
  for (const s of readAllStates(p)) for (const n of s.state.nics) if (n.network === name) byMac.set(n.hwaddr, { container: s.name, isStatic: n.static });
  return readLeases(p, name).map((l) => {
    const who = byMac.get(l.hwaddr);
    return { ...l, container: who?.container, type: who ? (who.isStatic ? 'static' : 'reserved') : 'dynamic' };
  });
}

export function leaseFile(p: Paths, name: string): string {
  return dnsFiles(p, name).leases;
}

/** Nothing of this installation's networks on the host (tests' teardown and a full reset). */
export async function teardownAll(p: Paths): Promise<void> {
  for (const n of listNetworkNames(p)) await teardown(p, n);
  applyRuleset(renderRuleset(nftTableName(p), [], []));
}
