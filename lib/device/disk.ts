import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Device } from '../profile/store.js';
import { containerRunDir, type Paths } from '../state/paths.js';
import { diskBindSpec, disksFileText, isRootDisk, validateDiskDevice } from '../storage/disk.js';
import { loadPoolIfExists } from '../storage/pool.js';
import { activateVolumePools } from '../storage/volume.js';
import { writeFileAtomic } from '../util/fs.js';
import { helperError, runHelper } from '../state/helper.js';
import type { RunFile } from '../state/spec.js';
import type { DeviceHandler, DeviceType, Named, TargetProblem } from './types.js';

/**
 * Disk devices other than the root disk: a host path or a custom volume bound into the container
 * (storage/disk.ts has their keys and bind specs). The binds are listed in a run dir file the
 * monitor reads at every boot; a live change mounts into or out of the container's mount
 * namespace with the helper's `disk` mode and rewrites that file, so a reboot inside keeps it.
 */

/** What the monitor binds at each boot (--disks-file). */
export const disksFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'disks');

export function writeDisksFile(p: Paths, name: string, disks: Named[], idmap: boolean): void {
  const f = disksRunFile(p, name, disks, idmap);
  writeFileAtomic(f.path, f.data, f.mode);
}

/** The disks file as data: a start writes it through its spec. */
export function disksRunFile(p: Paths, name: string, disks: Named[], idmap: boolean): RunFile {
  return { path: disksFile(p, name), mode: 0o600, data: disksFileText(Object.fromEntries(disks), p, { idmap }) };
}

async function disk(instance: string, args: string[], what: string): Promise<void> {
  const r = await runHelper(['disk', ...args]);
  if (r.code !== 0) throw new TslxcError(`${what} of running container "${instance}"`, helperError(r.stderr));
}

const diskHandler: DeviceHandler = {
  name: 'disk',
  start(t, devices) {
    return {
      files: () => [disksRunFile(t.ctx.paths, t.cfg.name, devices.disk, t.idmap !== undefined)],
      helperArgs: ['--disks-file', disksFile(t.ctx.paths, t.cfg.name)],
    };
  },
  async live(t, { from, to, removed, added }) {
    const p = t.ctx.paths;
    const name = t.cfg.name;
    const pid = ['--pid', String(t.pid)];
    const idmap = t.userns;
    return {
      async apply(revert) {
        const applied: string[] = [];
        // The old mounts go first (a changed disk is unmounted, then mounted anew).
        for (const [dev, d] of removed) {
          await disk(name, [...pid, '--remove', path.posix.normalize(d.path)], `Cannot remove disk "${dev}"`);
          revert.add(() => disk(name, [...pid, '--add', diskBindSpec(dev, d, p, { idmap })], 'restore'));
          applied.push(`removed disk ${dev}`);
        }
        if (added.length) await activateVolumePools(t.ctx, Object.fromEntries(added));
        for (const [dev, d] of added) {
          await disk(name, [...pid, '--add', diskBindSpec(dev, d, p, { idmap })], `Cannot add disk "${dev}"`);
          revert.add(() => disk(name, [...pid, '--remove', path.posix.normalize(d.path)], 'undo'));
          applied.push(`added disk ${dev}`);
        }
        writeDisksFile(p, name, to.disk, idmap);
        revert.add(() => writeDisksFile(p, name, from.disk, idmap));
        return applied;
      },
    };
  },
};

/** A pool named by a new or changed device must exist (`default` is made on first use). */
export function missingPool(paths: Paths, dev: Device): TargetProblem | undefined {
  if (dev.pool && dev.pool !== 'default' && !loadPoolIfExists(paths, dev.pool))
    return { why: `storage pool "${dev.pool}" does not exist`, fix: 'see "tslxc storage list"' };
  return undefined;
}

export const diskDevice: DeviceType = {
  key: 'disk',
  types: ['disk'],
  owns: (dev) => !isRootDisk(dev),
  validate: (name, dev) => validateDiskDevice(name, dev),
  checkTargets: (paths, _name, dev) => missingPool(paths, dev),
  handler: diskHandler,
};
