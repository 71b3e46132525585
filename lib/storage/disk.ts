import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Device } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import { validatePoolName } from './pool.js';
import { parseSize } from '../util/units.js';
import { resolveVolume, validateVolumeName } from './volume.js';

/**
 * Disk devices other than the root disk: a host path bound into the container
 * (`tslxc config device add NAME src disk source=/srv/src path=/src [readonly=true]`). The target
 * is resolved inside the container's root by the helper (openat2 RESOLVE_IN_ROOT), so an image's
 * symlink cannot redirect the bind onto the host.
 */
export function isRootDisk(dev: Device): boolean {
  return dev.type === 'disk' && dev.path === '/';
}

/** The root disk of an expanded device set, if it has one: where the rootfs is, and its size. */
export function rootDiskOf(devices: Record<string, Device>): Device | undefined {
  return Object.values(devices).find(isRootDisk);
}

export function validateDiskDevice(name: string, dev: Device, opts: { checkHost?: boolean; paths?: Paths } = {}): void {
  const bad = (why: string, fix?: string) => new TslxcError(`Invalid disk device "${name}"`, why, fix);
  for (const k of Object.keys(dev)) {
    if (!['type', 'path', 'source', 'pool', 'readonly', 'size', 'shift'].includes(k))
      throw bad(`unknown key "${k}"`, 'disk devices take path, source, pool, readonly, shift, size');
  }
  if (!dev.path || !dev.path.startsWith('/') || dev.path.split('/').includes('..'))
    throw bad('"path" must be an absolute path inside the container, without ".."');
  if (isRootDisk(dev)) {
    if (dev.size !== undefined) parseSize(dev.size, { key: `size of disk device "${name}"` });
    return;
  }
  if (dev.readonly !== undefined && !['true', 'false', '1', '0', 'yes', 'no'].includes(dev.readonly)) throw bad('"readonly" must be true or false');
  if (dev.shift !== undefined && !['true', 'false', '1', '0', 'yes', 'no'].includes(dev.shift)) throw bad('"shift" must be true or false');
  if (dev.size !== undefined) throw bad('"size" applies only to the root disk');
  if (dev.pool !== undefined) {
    // A custom volume: pool=POOL source=VOLUME (tslxc storage volume attach).
    try {
      validatePoolName(dev.pool);
      validateVolumeName(dev.source);
    } catch (err) {
      throw bad((err as TslxcError).message, 'a volume disk takes pool=POOL source=VOLUME');
    }
    if (opts.paths) {
      try {
        resolveVolume(opts.paths, dev.pool, dev.source);
      } catch (err) {
        throw bad((err as TslxcError).message, `create it with "tslxc storage volume create ${dev.pool} ${dev.source}"`);
      }
    }
    return;
  }
  if (!dev.source || !dev.source.startsWith('/')) throw bad('"source" must be an absolute host path');
  if (opts.checkHost !== false && !fs.existsSync(dev.source)) throw bad(`the source ${dev.source} does not exist on the host`, 'create it first');
}

const truthy = (v: string | undefined) => v === 'true' || v === '1' || v === 'yes';

/**
 * The helper's bind spec (SRC:DST[:ro,idmap]) of one disk device that is not the root disk: a
 * host path, or a custom volume's dir on its pool. `idmap` says the container has a user
 * namespace. Used at start (--disks-file) and when a disk is added to a running container.
 */
export function diskBindSpec(name: string, dev: Device, paths: Paths | undefined, opts: { idmap?: boolean } = {}): string {
  validateDiskDevice(name, dev, { paths });
  let src: string;
  if (dev.pool !== undefined) {
    if (!paths) throw new TslxcError(`Cannot use disk device "${name}"`, 'a storage volume needs the state dir');
    src = resolveVolume(paths, dev.pool, dev.source);
  } else src = path.resolve(dev.source);
  // shift=true: in an unprivileged container the source is idmapped, so its files show with
  // their own ids inside (host root's as container root's); without it they keep their host
  // ids (root's files are nobody's inside). A custom volume is the containers' own data: it is
  // idmapped unless shift=false, so its files are stored with container ids, whichever
  // container (map) uses it. A privileged container has nothing to shift.
  const shift = dev.shift !== undefined ? truthy(dev.shift) : dev.pool !== undefined;
  const options = [...(truthy(dev.readonly) ? ['ro'] : []), ...(opts.idmap && shift ? ['idmap'] : [])];
  return `${src}:${path.posix.normalize(dev.path)}${options.length ? `:${options.join(',')}` : ''}`;
}

/** The disk devices a bind is made for (not the root disk), by name. */
export function boundDisks(devices: Record<string, Device>): Array<[string, Device]> {
  return Object.entries(devices)
    .filter(([, dev]) => dev.type === 'disk' && !isRootDisk(dev))
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * The --disks-file content: one bind spec a line. The monitor reads it at every boot, reboots
 * included, so it is rewritten whenever a disk is added to or removed from the running container.
 */
export function disksFileText(devices: Record<string, Device>, paths?: Paths, opts: { idmap?: boolean } = {}): string {
  return boundDisks(devices)
    .map(([name, dev]) => `${diskBindSpec(name, dev, paths, opts)}\n`)
    .join('');
}
