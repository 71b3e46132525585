import fs from 'node:fs';
import type { Image } from '../image/store.js';
import { isLayer, layerDirs } from '../image/layers.js';
import type { Paths } from '../state/paths.js';
import type { RootFile } from '../storage/instance.js';
import { resolveInRoot } from '../util/rootfs.js';
import { ecdsaP256, ed25519, privateKeyFile } from './keygen.js';

/**
 * A container's own SSH host keys, made by tslxc when it makes the container (create, copy)
 * instead of by the image's first boot. Debian's `ssh-keygen -A` at boot makes an RSA-3072 key
 * too, which was most of a systemd boot (systemd-analyze blame shows it); an Ed25519 and an
 * ECDSA P-256 key cost next to nothing to make. Clients have offered both for
 * a decade (OpenSSH 6.5, 2014); sshd does not complain about a default RSA key that is absent.
 * An image's boot-time generator (the Debian recipe's ssh-hostkeys.service, conditioned on the
 * Ed25519 key's absence) then has nothing to do.
 *
 * The files are written in OpenSSH's own formats (keygen.ts).
 */
export interface HostKey {
  /** file name under /etc/ssh, without .pub */
  file: string;
  privateKey: string;
  /** one line: "TYPE BASE64 COMMENT" */
  publicKey: string;
}

export function makeHostKeys(hostname: string): HostKey[] {
  const comment = `root@${hostname}`;
  return [['ssh_host_ecdsa_key', ecdsaP256()] as const, ['ssh_host_ed25519_key', ed25519()] as const].map(([file, k]) => ({
    file,
    privateKey: privateKeyFile(k, comment),
    publicKey: `${k.type} ${k.publicBlob.toString('base64')} ${comment}`,
  }));
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
  const has = (inner: string, test: (st: fs.Stats) => boolean) =>
    layers.some((root) => {
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
