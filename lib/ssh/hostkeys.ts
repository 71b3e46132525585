import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Image } from '../image/store.js';
import { isLayer, layerDirs } from '../image/layers.js';
import type { Paths } from '../state/paths.js';
import type { RootFile } from '../storage/instance.js';
import { resolveInRoot } from '../util/rootfs.js';

/**
 * A container's own SSH host keys, made by tslxc when it makes the container (create, copy)
 * instead of by the image's first boot. Debian's `ssh-keygen -A` at boot makes an RSA-3072 key
 * too, which took 0.47 s of a 0.77 s systemd boot on this host (systemd-analyze blame); an
 * Ed25519 and an ECDSA P-256 key take about a millisecond here. Clients have offered both for
 * a decade (OpenSSH 6.5, 2014); sshd does not complain about a default RSA key that is absent.
 * An image's boot-time generator (the Debian recipe's ssh-hostkeys.service, conditioned on the
 * Ed25519 key's absence) then has nothing to do.
 *
 * The files are written in OpenSSH's own formats (PROTOCOL.key): unencrypted private keys,
 * "TYPE BASE64 COMMENT" public keys, as ssh-keygen writes them. Written with node's crypto
 * rather than ssh2's helper: importing ssh2 costs ~60 ms of a launch.
 */
function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** An unsigned big-endian integer as SSH's mpint: a leading zero byte when the top bit is set. */
function mpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

interface KeyParts {
  type: string;
  /** the public key blob (what authorized_keys and known_hosts hold, base64) */
  publicBlob: Buffer;
  /** the key's own fields in the private section, after its type */
  privateFields: Buffer;
}

function ed25519(): KeyParts {
  const jwk = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x!, 'base64url');
  const seed = Buffer.from(jwk.d!, 'base64url');
  const type = 'ssh-ed25519';
  return { type, publicBlob: Buffer.concat([sshString(type), sshString(pub)]), privateFields: Buffer.concat([sshString(pub), sshString(Buffer.concat([seed, pub]))]) };
}

function ecdsaP256(): KeyParts {
  const jwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const q = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const type = 'ecdsa-sha2-nistp256';
  const curve = sshString('nistp256');
  return { type, publicBlob: Buffer.concat([sshString(type), curve, sshString(q)]), privateFields: Buffer.concat([curve, sshString(q), mpint(Buffer.from(jwk.d!, 'base64url'))]) };
}

/** OpenSSH's "openssh-key-v1" container, unencrypted. */
function privateKeyFile(k: KeyParts, comment: string): string {
  const check = crypto.randomBytes(4).readUInt32BE();
  let priv = Buffer.concat([uint32(check), uint32(check), sshString(k.type), k.privateFields, sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), uint32(1), sshString(k.publicBlob), sshString(priv)]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;
}

export interface HostKey {
  /** file name under /etc/ssh, without .pub */
  file: string;
  privateKey: string;
  /** one line: "TYPE BASE64 COMMENT" */
  publicKey: string;
}

export function makeHostKeys(hostname: string): HostKey[] {
  const comment = `root@${hostname}`;
  return [
    ['ssh_host_ecdsa_key', ecdsaP256()] as const,
    ['ssh_host_ed25519_key', ed25519()] as const,
  ].map(([file, k]) => ({ file, privateKey: privateKeyFile(k, comment), publicKey: `${k.type} ${k.publicBlob.toString('base64')} ${comment}` }));
}

export function hostKeyFiles(hostname: string): RootFile[] {
  return makeHostKeys(hostname).flatMap((k) => [
    { path: `/etc/ssh/${k.file}`, content: k.privateKey, mode: 0o600 },
    { path: `/etc/ssh/${k.file}.pub`, content: `${k.publicKey}\n`, mode: 0o644 },
  ]);
}

/**
 * Whether tslxc should make a container's host keys: the image runs OpenSSH's sshd (its config
 * dir is there) and ships no host key of its own (a good image has none: all its containers would
 * share them).
 */
export function imageNeedsHostKeys(p: Paths, image: Image): boolean {
  // A layered image: each layer holds what it changed (a whiteout of a key is read as a key: no harm).
  const layers = isLayer(image) ? layerDirs(p, image) : [image.rootfs];
  const has = (inner: string, test: (st: fs.Stats) => boolean) => layers.some((root) => {
    try {
      return test(fs.statSync(resolveInRoot(root, inner)));
    } catch {
      return false;
    }
  });
  if (!has('/usr/sbin/sshd', (st) => st.isFile()) || !has('/etc/ssh', (st) => st.isDirectory())) return false;
  return !layers.some((root) => {
    try {
      return fs.readdirSync(resolveInRoot(root, '/etc/ssh')).some((e) => /^ssh_host_.*_key$/.test(e));
    } catch {
      return false;
    }
  });
}
