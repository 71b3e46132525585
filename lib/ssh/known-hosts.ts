import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { locksDir, type Paths } from '../state/paths.js';
import { readTextIfExists, writeFileAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { blobType, fingerprintOf } from './pubkey.js';
import { sshDir } from './keys.js';

/**
 * Containers' SSH host keys, learnt on the first connection and checked on every later one, as
 * OpenSSH's known_hosts does. STATE/ssh/known_hosts has OpenSSH's line format, so it can also be
 * given to `ssh -o UserKnownHostsFile=`:
 *
 *   ADDRESS KEYTYPE BASE64 name=NAME created=CREATED_AT
 *
 * An entry belongs to a container by name AND creation time: a container deleted and made again
 * under the same name is another machine with new host keys, and must not be taken for an attack;
 * the same container presenting another key is refused. The address is recorded (and updated when
 * DHCP hands out another one) but does not identify the container: an address moves between
 * containers, the name and creation time do not.
 */
export interface HostIdentity {
  name: string;
  created: string;
  address: string;
}

export interface KnownHost extends HostIdentity {
  type: string;
  base64: string;
}

export const knownHostsFile = (p: Paths) => path.join(sshDir(p), 'known_hosts');

export function parseKnownHosts(text: string): KnownHost[] {
  const out: KnownHost[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || line.startsWith('#')) continue;
    const tags = Object.fromEntries(f.slice(3).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]));
    if (!tags.name || !tags.created) continue;
    out.push({ address: f[0], type: f[1], base64: f[2], name: tags.name, created: tags.created });
  }
  return out;
}

export function formatKnownHosts(entries: KnownHost[]): string {
  return entries.map((e) => `${e.address} ${e.type} ${e.base64} name=${e.name} created=${e.created}\n`).join('');
}

function load(p: Paths): KnownHost[] {
  return parseKnownHosts(readTextIfExists(knownHostsFile(p)) ?? '');
}

function save(p: Paths, entries: KnownHost[]): void {
  fs.mkdirSync(sshDir(p), { recursive: true, mode: 0o700 });
  writeFileAtomic(knownHostsFile(p), formatKnownHosts(entries), 0o644);
}

/** The key stored for this container (this incarnation of the name), if any. */
export function knownKey(p: Paths, id: HostIdentity): KnownHost | undefined {
  return load(p).find((e) => e.name === id.name && e.created === id.created);
}

export type HostKeyVerdict = { status: 'known' } | { status: 'new' } | { status: 'changed'; stored: KnownHost };

export function checkHostKey(p: Paths, id: HostIdentity, blob: Buffer): HostKeyVerdict {
  const stored = knownKey(p, id);
  if (!stored) return { status: 'new' };
  return stored.base64 === blob.toString('base64') ? { status: 'known' } : { status: 'changed', stored };
}

/** Record the container's key; drops the entries of earlier containers of that name. */
export async function rememberHostKey(p: Paths, id: HostIdentity, blob: Buffer): Promise<void> {
  await withLock(
    locksDir(p),
    'ssh-known-hosts',
    () => {
      const others = load(p).filter((e) => e.name !== id.name);
      save(p, [...others, { ...id, type: blobType(blob), base64: blob.toString('base64') }]);
    },
    { purpose: 'the SSH known_hosts file' },
  );
}

/** After a verified connection from a new address: keep the key, record the address. */
export async function updateAddress(p: Paths, id: HostIdentity): Promise<void> {
  const stored = knownKey(p, id);
  if (!stored || stored.address === id.address) return;
  await withLock(
    locksDir(p),
    'ssh-known-hosts',
    () => {
      save(
        p,
        load(p).map((e) => (e.name === id.name && e.created === id.created ? { ...e, address: id.address } : e)),
      );
    },
    { purpose: 'the SSH known_hosts file' },
  );
}

/** Forget every key stored under a container name; returns how many entries went. */
export async function forgetHostKey(p: Paths, name: string): Promise<number> {
  return withLock(
    locksDir(p),
    'ssh-known-hosts',
    () => {
      const all = load(p);
      const kept = all.filter((e) => e.name !== name);
      if (kept.length !== all.length) save(p, kept);
      return all.length - kept.length;
    },
    { purpose: 'the SSH known_hosts file' },
  );
}

/** The line OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED" boils down to. */
export function changedKeyError(id: HostIdentity, blob: Buffer, stored: KnownHost): TslxcError {
  const was = fingerprintOf(Buffer.from(stored.base64, 'base64'));
  return new TslxcError(
    `Host key of "${id.name}" (${id.address}) has changed`,
    `it now offers ${blobType(blob)} ${fingerprintOf(blob)}, tslxc knows ${stored.type} ${was}; someone may be intercepting the connection, or the container's host keys were regenerated`,
    `if you expect this, "tslxc ssh ${id.name} --forget-host-key" forgets the old key and learns the new one`,
  );
}
