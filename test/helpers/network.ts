import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import type { TestEnv } from './env.js';

/**
 * Networking for tests: a bridge name unique to the run (tslt + 6 random characters, never the
 * user's tslxcbr0), a profile that puts eth0 on it, and a teardown that removes the test's
 * networks, dnsmasq processes (by their pid files only) and nft table.
 */
export function uniqueBridge(prefix = 'tslt'): string {
  return `${prefix}${crypto.randomBytes(4).toString('hex').slice(0, 6)}`;
}

export async function useNetworkProfile(env: TestEnv, network: string, profile = 'default', extra: Record<string, Record<string, string>> = {}): Promise<void> {
  const { saveProfile } = await import('../../lib/profile/store.js');
  saveProfile(env.paths, {
    name: profile,
    description: `test: eth0 on ${network}`,
    config: {},
    devices: { eth0: { type: 'nic', network, name: 'eth0' }, ...extra },
    builtin: false,
  });
}

export async function teardownNetworks(env: TestEnv): Promise<void> {
  const { teardownAll } = await import('../../lib/network/manage.js');
  await teardownAll(env.paths).catch(() => {});
}

export async function nftTable(env: TestEnv): Promise<string> {
  const { nftTableName } = await import('../../lib/network/names.js');
  return nftTableName(env.paths, {});
}

/** Host links whose name starts with one of the prefixes. */
export function hostLinks(...prefixes: string[]): string[] {
  return fs.readdirSync('/sys/class/net').filter((l) => prefixes.some((p) => l.startsWith(p)));
}

export function nftList(table: string): string | undefined {
  const r = spawnSync('/usr/sbin/nft', ['list', 'table', 'ip', table], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** One DNS A query over UDP to a given server (the network's dnsmasq): the addresses answered. */
export function dnsQuery(server: string, name: string, timeoutMs = 2000): Promise<string[]> {
  const id = crypto.randomBytes(2).readUInt16BE(0);
  const qname = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // recursion desired
  header.writeUInt16BE(1, 4);
  const packet = Buffer.concat([header, qname, Buffer.from([0, 1, 0, 1])]);
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no DNS answer from ${server} for ${name}`));
    }, timeoutMs);
    sock.on('message', (msg) => {
      if (msg.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.close();
      const answers = msg.readUInt16BE(6);
      let off = 12 + qname.length + 4;
      const out: string[] = [];
      for (let i = 0; i < answers; i++) {
        off += (msg[off] & 0xc0) === 0xc0 ? 2 : skipName(msg, off);
        const type = msg.readUInt16BE(off);
        const len = msg.readUInt16BE(off + 8);
        if (type === 1 && len === 4) out.push([...msg.subarray(off + 10, off + 14)].join('.'));
        off += 10 + len;
      }
      resolve(out);
    });
    sock.send(packet, 53, server);
  });
}

function skipName(msg: Buffer, off: number): number {
  let n = 0;
  while (msg[off + n] !== 0) {
    if ((msg[off + n] & 0xc0) === 0xc0) return n + 2;
    n += msg[off + n] + 1;
  }
  return n + 1;
}

/** A TCP port nothing listens on now on `host` (the kernel's pick for port 0). */
export function freePort(host = '0.0.0.0'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}
