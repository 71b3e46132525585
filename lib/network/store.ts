import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { readYaml, writeYamlAtomic } from '../util/yaml.js';
import { locksDir, type Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';
import { lockFile, withLock } from '../util/lock.js';
import { parseCidr, parseIpv6Cidr, hostRange, formatCidr } from './ipv4.js';
import { validateNetworkName } from './names.js';

/**
 * Managed networks: TSLXC_DIR/networks/NAME.yaml holds what the user asked for (with `auto`
 * resolved at creation, so the subnet is stable); TSLXC_RUN_DIR/networks/NAME holds what runs
 * (dnsmasq's config, pid, leases and per-container reservations).
 */
export interface NetworkDef {
  name: string;
  description: string;
  config: Record<string, string>;
}

export const networksDir = (p: Paths) => path.join(p.stateDir, 'networks');
export const networkFile = (p: Paths, name: string) => path.join(networksDir(p), `${validateNetworkName(name)}.yaml`);
export const networkRunDir = (p: Paths, name: string) => path.join(p.runDir, 'networks', validateNetworkName(name));

/** The name of the network the built-in default profile uses; created on first use. */
export const DEFAULT_NETWORK = 'tslxcbr0';

export const NETWORK_KEYS: Record<string, string> = {
  'ipv4.address': 'the bridge\'s address and prefix (10.1.2.1/24), "auto" or "none"',
  'ipv4.nat': 'masquerade traffic leaving the subnet (true/false, default true)',
  'ipv6.address': 'a ULA for the bridge (fd..::1/64), "auto" or "none" (default)',
  'dns.domain': 'the DNS domain of the containers (default tslxc)',
  'bridge.mtu': "the bridge's MTU, also handed to containers by DHCP (default 1500)",
};

const DOMAIN = /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Check one key; `auto` values are left for the caller to resolve. Returns the normalised value. */
export function validateNetworkKey(key: string, value: string): string {
  const bad = (why: string, fix?: string) => new TslxcError(`Invalid value for "${key}": "${value.slice(0, 60)}"`, why, fix, { kind: 'invalid' });
  switch (key) {
    case 'ipv4.address': {
      if (value === 'auto' || value === 'none') return value;
      const c = parseCidr(value);
      if (!c) throw bad('expected ADDRESS/PREFIX like 10.1.2.1/24, "auto" or "none"');
      if (c.prefix < 8 || c.prefix > 30) throw bad('the prefix must be between /8 and /30');
      const [first, last] = hostRange(c);
      if (c.addr < first || c.addr > last) throw bad("the address is the subnet's network or broadcast address", "give the gateway's address, e.g. x.y.z.1/24");
      if (c.addr >>> 24 === 127 || c.addr >>> 28 >= 14 || c.addr >>> 24 === 0) throw bad('loopback, multicast and reserved addresses cannot be a subnet');
      return formatCidr(c);
    }
    case 'ipv4.nat':
      if (!['true', 'false'].includes(value)) throw bad('expected true or false');
      return value;
    case 'ipv6.address': {
      if (value === 'auto' || value === 'none') return value;
      const c = parseIpv6Cidr(value);
      if (!c || c.prefix !== 64) throw bad('expected an IPv6 address with a /64 prefix like fd42:1:2:3::1/64, "auto" or "none"');
      return value.toLowerCase();
    }
    case 'dns.domain':
      if (!DOMAIN.test(value)) throw bad('expected a DNS domain like "tslxc" or "lab.example"');
      return value;
    case 'bridge.mtu': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1280 || n > 9000) throw bad('expected a number between 1280 and 9000');
      return String(n);
    }
    default:
      if (key.startsWith('user.')) return value;
      throw new TslxcError(`Unknown network key "${key}"`, undefined, `known keys: ${Object.keys(NETWORK_KEYS).join(', ')}, user.*`, { kind: 'invalid' });
  }
}

export function networkExists(p: Paths, name: string): boolean {
  return fs.existsSync(networkFile(p, name));
}

export function loadNetwork(p: Paths, name: string): NetworkDef {
  const file = networkFile(p, name);
  if (!fs.existsSync(file)) throw new TslxcError(`Network "${name}" not found`, undefined, 'see "tslxc network list"', { kind: 'not-found' });
  const doc = readYaml<Partial<NetworkDef>>(file) ?? {};
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) config[k] = String(v);
  return { name, description: doc.description ? String(doc.description) : '', config };
}

export function saveNetwork(p: Paths, net: NetworkDef): void {
  mkdirp(networksDir(p), 0o700);
  writeYamlAtomic(networkFile(p, net.name), { description: net.description, config: net.config }, 0o600);
  bumpGeneration(p, scope.network(net.name));
}

export function removeNetworkFile(p: Paths, name: string): void {
  fs.rmSync(networkFile(p, name), { force: true });
  bumpGeneration(p, scope.network(name));
}

export function listNetworkNames(p: Paths): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(networksDir(p));
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .filter((n) => {
      try {
        validateNetworkName(n);
        return true;
      } catch {
        return false;
      }
    })
    .sort();
}

/** Everything that changes networks, their reservations or tslxc's nft table runs under this lock. */
/** The file of the networks' lock (util/lock.ts; start plans take it too). */
export const networkLockFile = (p: Paths) => lockFile(locksDir(p), 'networks');

export function withNetworkLock<T>(p: Paths, fn: () => Promise<T> | T): Promise<T> {
  return withLock(locksDir(p), 'networks', fn, { purpose: 'the network configuration', timeoutMs: 5 * 60_000 });
}

/** The bridge's IPv4 (gateway address and prefix), or undefined for ipv4.address=none. */
export function bridgeIpv4(net: NetworkDef) {
  const v = net.config['ipv4.address'];
  return v && v !== 'none' ? parseCidr(v) : undefined;
}

export const domainOf = (net: NetworkDef) => net.config['dns.domain'] || 'tslxc';
export const natOf = (net: NetworkDef) => (net.config['ipv4.nat'] ?? 'true') === 'true';
export const mtuOf = (net: NetworkDef) => Number(net.config['bridge.mtu'] || 1500);
export const ipv6Of = (net: NetworkDef) => (net.config['ipv6.address'] && net.config['ipv6.address'] !== 'none' ? net.config['ipv6.address'] : undefined);
