import crypto from 'node:crypto';

/**
 * IPv4 arithmetic on unsigned 32-bit numbers, and the few IPv6 bits the ULA prefix needs. Pure
 * functions: unit tested without root.
 */
export interface Cidr {
  /** the address as written (the gateway's, for a network) */
  addr: number;
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIp(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const addr = parseIp(m[1]);
  const prefix = Number(m[2]);
  if (addr === undefined || prefix > 32) return undefined;
  return { addr, prefix };
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function networkOf(c: Cidr): number {
  return (c.addr & maskOf(c.prefix)) >>> 0;
}

export function broadcastOf(c: Cidr): number {
  return (networkOf(c) | ~maskOf(c.prefix)) >>> 0;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.addr)}/${c.prefix}`;
}

/** "10.1.2.0/24" for a gateway address 10.1.2.1/24. */
export function subnetString(c: Cidr): string {
  return `${formatIp(networkOf(c))}/${c.prefix}`;
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & maskOf(c.prefix)) >>> 0 === networkOf(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return (a.addr & m) >>> 0 === (b.addr & m) >>> 0;
}

/** Usable host addresses of a subnet (network and broadcast excluded), first and last. */
export function hostRange(c: Cidr): [number, number] {
  if (c.prefix >= 31) throw new Error('a subnet for containers needs a prefix of /30 or shorter');
  return [networkOf(c) + 1, broadcastOf(c) - 1];
}

/**
 * A free /24 in 10.0.0.0/8 that overlaps none of `used`: random rather than the first free one,
 * so two installations creating networks at the same moment rarely pick the same one.
 */
export function pickFreeSubnet(used: Cidr[], random: () => number = Math.random): Cidr | undefined {
  const free = (c: Cidr) => !used.some((u) => overlaps(u, c));
  for (let i = 0; i < 200; i++) {
    const b = 1 + Math.floor(random() * 254);
    const c = Math.floor(random() * 256);
    const cand = { addr: ((10 << 24) | (b << 16) | (c << 8) | 1) >>> 0, prefix: 24 };
    if (free(cand)) return cand;
  }
  for (let b = 0; b < 256; b++) {
    for (let c = 0; c < 256; c++) {
      const cand = { addr: ((10 << 24) | (b << 16) | (c << 8) | 1) >>> 0, prefix: 24 };
      if (free(cand)) return cand;
    }
  }
  return undefined;
}

/** An RFC 4193 unique local /64 with the gateway at ::1, e.g. fd12:3456:789a:1::1/64. */
export function randomUla(): string {
  const b = crypto.randomBytes(5);
  const hex = (i: number) => ((b[i] << 8) | b[i + 1]).toString(16);
  return `fd${b[0].toString(16).padStart(2, '0')}:${hex(1)}:${hex(3)}:1::1/64`;
}

/** A loose check of an IPv6 CIDR (the kernel and dnsmasq have the last word). */
export function parseIpv6Cidr(s: string): { addr: string; prefix: number } | undefined {
  const m = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(s);
  if (!m || Number(m[2]) > 128 || !m[1].includes(':')) return undefined;
  const groups = m[1].split('::');
  if (groups.length > 2) return undefined;
  if (!m[1].split(':').every((g) => g === '' || /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return { addr: m[1].toLowerCase(), prefix: Number(m[2]) };
}
