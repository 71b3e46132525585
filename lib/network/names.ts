import crypto from 'node:crypto';
import { TslxcError } from '../errors.js';
import type { Paths } from '../state/paths.js';

/**
 * Names on the host's shared namespaces (interfaces, nft tables) must not collide between two
 * installations (the user's and a test's) or two containers, and must fit the kernel's 15
 * characters. They are derived from stable inputs, so a crashed start can be cleaned up by name.
 */

/** A managed network's name is also its bridge's name: an interface name, at most 15 characters. */
const NETWORK_NAME = /^[a-z][a-z0-9_-]{0,14}$/;

export function validateNetworkName(name: unknown): string {
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) {
    throw new TslxcError(
      `Invalid network name "${String(name)
        .slice(0, 40)
        .replace(/[^\x20-\x7e]/g, '?')}"`,
      'it is the bridge\'s interface name: a lowercase letter, then up to 14 of a-z, 0-9, "_" and "-"',
      'pick a name like "tslxcbr1"',
      { kind: 'invalid' },
    );
  }
  return name;
}

/** A nic's name inside the container: any interface name. */
export function validateInterfaceName(name: string): boolean {
  return /^[a-zA-Z0-9_.-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

function digest(...parts: string[]): string {
  return crypto.createHash('sha256').update(parts.join('\0')).digest('hex');
}

/**
 * The host end of a nic's veth pair: "tsl" + 12 hex digits of a hash of the installation, the
 * container and the device. Stable across starts (so leftovers of a dead start are found by name)
 * and distinct across installations sharing the host.
 */
export function hostVethName(stateDir: string, container: string, device: string): string {
  return `tsl${digest(stateDir, container, device).slice(0, 12)}`;
}

/** A stable, locally administered unicast MAC (LXD's 00:16:3e prefix is theirs; 02: marks local). */
export function stableHwaddr(seed: string): string {
  const h = digest('hwaddr', seed);
  const b = [0x02, ...[0, 2, 4, 6, 8].map((i) => parseInt(h.slice(i, i + 2), 16))];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function randomHwaddr(): string {
  return stableHwaddr(crypto.randomBytes(16).toString('hex'));
}

export function validHwaddr(s: string): boolean {
  // unicast only: the low bit of the first octet marks multicast
  return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s) && (parseInt(s.slice(0, 2), 16) & 1) === 0;
}

/**
 * tslxc's own nftables table (family ip). TSLXC_NFT_TABLE wins; otherwise "tslxc" for the default
 * installation and a name derived from the cgroup prefix for any other (tests set a unique cgroup
 * prefix, so each test run has its own table and never touches the user's).
 */
export function nftTableName(p: Paths, env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.TSLXC_NFT_TABLE || (p.cgroupPrefix === 'tslxc' ? 'tslxc' : p.cgroupPrefix.includes('tslxc') ? p.cgroupPrefix : `tslxc_${p.cgroupPrefix}`);
  const name = raw.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name))
    throw new TslxcError(`Invalid nftables table name "${raw}"`, 'use letters, digits and "_" (TSLXC_NFT_TABLE)');
  return name;
}
