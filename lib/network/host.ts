import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { TslxcError } from '../errors.js';
import { requireTool } from '../util/exec.js';
import { parseCidr, parseIp, type Cidr } from './ipv4.js';

/** The host side: `ip` commands, what the host's routes and sockets already use. */

/** A system tool by absolute path (requireTool looks in the system's directories first), cached. */
const found = new Map<string, string>();
export function systemTool(name: string, purpose: string): string {
  let p = found.get(name);
  if (!p) {
    p = requireTool(name, purpose);
    found.set(name, p);
  }
  return p;
}

export function ipTool(): string {
  return systemTool('ip', 'configure the network');
}

/** Run `ip ARGS`; failure is a TslxcError "WHAT: ip's last line". */
export function ip(args: string[], what: string): string {
  const r = spawnSync(ipTool(), args, { encoding: 'utf8' });
  if (r.error) throw new TslxcError(what, r.error.message);
  if (r.status !== 0) throw new TslxcError(what, (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-1)[0]);
  return r.stdout;
}

/** Like ip() but failures are ignored (cleanup of things that may be gone). */
export function ipQuiet(args: string[]): boolean {
  return spawnSync(ipTool(), args, { stdio: 'ignore' }).status === 0;
}

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Every IPv4 subnet the host uses (interface addresses and routes of every table), except on `skipDev`. */
export function usedSubnets(skipDev?: string): Array<Cidr & { where: string }> {
  const out: Array<Cidr & { where: string }> = [];
  const addrs = JSON.parse(ip(['-j', '-4', 'addr', 'show'], "Cannot read the host's addresses") || '[]') as Array<{
    ifname: string;
    addr_info?: Array<{ local: string; prefixlen: number }>;
  }>;
  for (const l of addrs) {
    if (l.ifname === skipDev) continue;
    for (const a of l.addr_info ?? []) {
      const c = parseCidr(`${a.local}/${a.prefixlen}`);
      if (c) out.push({ ...c, where: `address ${a.local}/${a.prefixlen} on ${l.ifname}` });
    }
  }
  const routes = JSON.parse(ip(['-j', '-4', 'route', 'show', 'table', 'all'], "Cannot read the host's routes") || '[]') as Array<{
    dst: string;
    dev?: string;
    type?: string;
  }>;
  for (const r of routes) {
    if (!r.dst || r.dst === 'default' || r.dev === skipDev || (r.type && r.type !== 'unicast')) continue;
    const c = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    if (c && c.prefix > 0) out.push({ ...c, where: `route ${r.dst}${r.dev ? ` dev ${r.dev}` : ''}` });
  }
  return out;
}

/**
 * Whether a host socket is bound to proto/port on an address that covers `addr` (wildcards cover
 * everything). Reads /proc/net/{tcp,udp}{,6} of the host's network namespace.
 */
export function portBound(proto: 'tcp' | 'udp', port: number, addr: string): boolean {
  const want = parseIp(addr);
  for (const v6 of [false, true]) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/net/${proto}${v6 ? '6' : ''}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const [hexAddr, hexPort] = f[1].split(':');
      if (parseInt(hexPort, 16) !== port) continue;
      if (proto === 'tcp' && f[3] !== '0A') continue; // LISTEN
      if (proto === 'udp' && f[2] !== '00000000:0000' && !f[2].endsWith(':0000')) continue;
      if (v6) {
        if (/^0+$/.test(hexAddr)) return true; // [::] takes IPv4 too unless v6only, be safe
        if (/^0{20}FFFF/i.test(hexAddr)) {
          const n = parseInt(hexAddr.slice(24), 16);
          const le = ((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24);
          if (want === undefined || want === 0 || le >>> 0 === want) return true;
        }
        continue;
      }
      const n = parseInt(hexAddr, 16);
      const bound = (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
      if (bound === 0 || want === undefined || want === 0 || bound === want) return true;
    }
  }
  return false;
}

export function writeSysctl(key: string, value: string): void {
  fs.writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value);
}

export function readSysctl(key: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** What the host shows of a link (LXD's network state): sysfs and the kernel's addresses, no command run. */
export interface LinkState {
  up: boolean;
  hwaddr: string;
  mtu: number;
  addresses: Array<{ family: 'inet' | 'inet6'; address: string; netmask: string; scope: string }>;
  counters: { bytes_received: number; bytes_sent: number; packets_received: number; packets_sent: number };
  bridge?: { id: string; stp: boolean; forward_delay: number; vlan_filtering: boolean; vlan_default: number; upper_devices: string[] };
}

export async function linkState(name: string): Promise<LinkState | undefined> {
  const dir = `/sys/class/net/${name}`;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || !fs.existsSync(dir)) return undefined;
  const read = (f: string) => {
    try {
      return fs.readFileSync(`${dir}/${f}`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const num = (f: string) => Number(read(f)) || 0;
  const os = await import('node:os');
  const addresses = (os.networkInterfaces()[name] ?? []).map((a) => ({
    family: a.family === 'IPv6' ? ('inet6' as const) : ('inet' as const),
    address: a.address,
    netmask: String(a.cidr?.split('/')[1] ?? ''),
    scope: a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:') ? 'link' : 'global',
  }));
  const isBridge = fs.existsSync(`${dir}/bridge`);
  return {
    up: read('operstate') === 'up' || (read('flags') !== '' && (Number(read('flags')) & 1) === 1),
    hwaddr: read('address'),
    mtu: num('mtu'),
    addresses,
    counters: {
      bytes_received: num('statistics/rx_bytes'),
      bytes_sent: num('statistics/tx_bytes'),
      packets_received: num('statistics/rx_packets'),
      packets_sent: num('statistics/tx_packets'),
    },
    ...(isBridge
      ? {
          bridge: {
            id: read('bridge/bridge_id'),
            stp: read('bridge/stp_state') !== '0',
            forward_delay: num('bridge/forward_delay'),
            vlan_filtering: read('bridge/vlan_filtering') === '1',
            vlan_default: num('bridge/default_pvid'),
            upper_devices: fs.existsSync(`${dir}/brif`) ? fs.readdirSync(`${dir}/brif`).sort() : [],
          },
        }
      : {}),
  };
}
