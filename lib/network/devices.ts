import fs from 'node:fs';
import { TslxcError } from '../errors.js';
import { defaultPaths, type Paths } from '../state/paths.js';
import type { Device } from '../profile/store.js';
import { contains, formatIp, hostRange, parseIp } from './ipv4.js';
import { portBound } from './host.js';
import { validateInterfaceName, validateNetworkName, validHwaddr } from './names.js';
import { bridgeIpv4, DEFAULT_NETWORK, loadNetwork, networkExists } from './store.js';

/**
 * nic and proxy devices: their keys, checked before anything is applied (by `config device add`
 * and again by start, since a profile may have changed since). lib/device/nic.ts and proxy.ts
 * decide which devices are which; these check the keys.
 *
 *   nic    network=NAME (a managed network) or parent=BRIDGE (an existing host bridge, no DHCP)
 *          name (inside, default: the device's name), hwaddr, ipv4.address (a reservation), mtu
 *   proxy  listen=tcp:ADDR:PORT connect=tcp:ADDR:PORT (udp too): DNAT from the host's ADDR:PORT
 *          to the container; connect's ADDR is 127.0.0.1 or 0.0.0.0 ("the container") or one of
 *          its addresses
 */
export const NIC_KEYS = ['type', 'nictype', 'network', 'parent', 'name', 'hwaddr', 'ipv4.address', 'mtu'];
export const PROXY_KEYS = ['type', 'listen', 'connect', 'bind', 'nic'];

export interface ProxyEnd {
  proto: 'tcp' | 'udp';
  addr: string;
  port: number;
}

export function parseProxyEnd(s: string | undefined, what: string, device: string): ProxyEnd {
  const m = /^(tcp|udp):([0-9.]+):(\d{1,5})$/.exec(s ?? '');
  const port = m ? Number(m[3]) : 0;
  if (!m || parseIp(m[2]) === undefined || port < 1 || port > 65535) {
    throw new TslxcError(`Invalid device "${device}"`, `${what} "${s ?? ''}" is not PROTO:IPV4:PORT`, `e.g. ${what}=tcp:0.0.0.0:2201 (tcp or udp)`);
  }
  return { proto: m[1] as 'tcp' | 'udp', addr: m[2], port };
}

/**
 * A nic's keys (a one-line TslxcError when one is wrong). `opts.checkHost` (default true) also
 * checks what the host has now: the network (or parent bridge) exists.
 */
export function validateNic(name: string, device: Device, p: Paths = defaultPaths(), opts: { checkHost?: boolean } = {}): void {
  const bad = (why: string, fix?: string) => new TslxcError(`Invalid device "${name}"`, why, fix);
  const checkHost = opts.checkHost ?? true;
  for (const k of Object.keys(device))
    if (!NIC_KEYS.includes(k) && !k.startsWith('user.')) throw bad(`unknown nic key "${k}"`, `nic keys: ${NIC_KEYS.join(', ')}`);
  if (device.nictype && device.nictype !== 'bridged') throw bad(`nictype "${device.nictype}" is not supported`, 'use nictype=bridged or leave it out');
  if (!device.network === !device.parent) throw bad('a nic needs exactly one of network=NAME (a managed network) or parent=BRIDGE');
  const ifname = device.name ?? name;
  if (!validateInterfaceName(ifname)) throw bad(`"${ifname}" is not a valid interface name`, 'set name=eth0 or similar (at most 15 characters)');
  if (device.hwaddr && !validHwaddr(device.hwaddr)) throw bad(`hwaddr "${device.hwaddr}" is not a unicast MAC address`);
  if (device.mtu && (!/^\d+$/.test(device.mtu) || Number(device.mtu) < 1280 || Number(device.mtu) > 9000))
    throw bad(`mtu "${device.mtu}" is not a number between 1280 and 9000`);
  if (device.parent) {
    if (device['ipv4.address']) throw bad('ipv4.address needs a managed network (network=NAME), not parent=');
    if (checkHost && !isBridge(device.parent))
      throw bad(`parent "${device.parent}" is not a bridge on this host`, 'create it, or use network=NAME for a managed one');
    return;
  }
  validateNetworkName(device.network);
  if (!networkExists(p, device.network)) {
    if (device.network === DEFAULT_NETWORK) return; // created on first use
    throw bad(`network "${device.network}" does not exist`, `create it with "tslxc network create ${device.network}"`);
  }
  if (device['ipv4.address']) {
    const net = loadNetwork(p, device.network);
    checkStaticAddress(name, device['ipv4.address'], net.name, bridgeIpv4(net));
  }
}

/**
 * A proxy's keys (a one-line TslxcError when one is wrong). `opts.checkHost` (default true) also
 * checks that the listen port is free on the host now.
 */
export function validateProxy(name: string, device: Device, opts: { checkHost?: boolean } = {}): void {
  const bad = (why: string, fix?: string) => new TslxcError(`Invalid device "${name}"`, why, fix);
  const checkHost = opts.checkHost ?? true;
  for (const k of Object.keys(device))
    if (!PROXY_KEYS.includes(k) && !k.startsWith('user.')) throw bad(`unknown proxy key "${k}"`, `proxy keys: ${PROXY_KEYS.join(', ')}`);
  if (device.bind && device.bind !== 'host') throw bad(`bind=${device.bind} is not supported`, 'proxies listen on the host (bind=host)');
  const listen = parseProxyEnd(device.listen, 'listen', name);
  const connect = parseProxyEnd(device.connect, 'connect', name);
  if (listen.proto !== connect.proto) throw bad('listen and connect must use the same protocol');
  if (checkHost && portBound(listen.proto, listen.port, listen.addr)) {
    throw bad(`${listen.proto} port ${listen.port} is already in use on the host (${listen.addr})`, 'pick another listen port');
  }
}

function isBridge(dev: string): boolean {
  return /^[a-zA-Z0-9_.-]{1,15}$/.test(dev) && fs.existsSync(`/sys/class/net/${dev}/bridge`);
}

export function checkStaticAddress(device: string, addr: string, network: string, subnet: ReturnType<typeof bridgeIpv4>): number {
  const ipn = parseIp(addr);
  if (ipn === undefined) throw new TslxcError(`Invalid device "${device}"`, `ipv4.address "${addr}" is not an IPv4 address`);
  if (!subnet) throw new TslxcError(`Invalid device "${device}"`, `network "${network}" has no IPv4 subnet`);
  const [first, last] = hostRange(subnet);
  if (!contains(subnet, ipn) || ipn < first || ipn > last) {
    throw new TslxcError(`Invalid device "${device}"`, `ipv4.address ${addr} is outside network "${network}" (${formatIp(first)} - ${formatIp(last)})`);
  }
  if (ipn === subnet.addr) throw new TslxcError(`Invalid device "${device}"`, `ipv4.address ${addr} is the address of network "${network}"'s bridge`);
  return ipn;
}
