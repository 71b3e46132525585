import { TslxcError } from '../errors.js';
import { isRootDisk, validateDiskDevice } from '../storage/disk.js';
import { applyRootSizeLive } from '../storage/instance.js';
import { missingPool } from './disk.js';
import type { DeviceHandler, DeviceType } from './types.js';

/**
 * The root disk: the disk at path /, on the pool the container's root is on (storage/instance.ts
 * makes and mounts it at start). Of its keys only `size` changes on a running container (a btrfs
 * qgroup); its pool changes with `tslxc move`.
 */
const rootDiskHandler: DeviceHandler = {
  name: 'root-disk',
  async live(t, { from, to }) {
    const name = t.cfg.name;
    const devices = (which: typeof from) => Object.fromEntries(which['root-disk']);
    return {
      async apply(revert) {
        await applyRootSizeLive(t.ctx, name, devices(to));
        revert.add(() => applyRootSizeLive(t.ctx, name, devices(from)));
        return ['root disk size'];
      },
    };
  },
};

export const rootDiskDevice: DeviceType = {
  key: 'root-disk',
  types: ['disk'],
  owns: isRootDisk,
  validate: (name, dev) => validateDiskDevice(name, dev),
  checkTargets: (paths, _name, dev) => missingPool(paths, dev),
  refuseLive(instance, dev, before, after) {
    if (isRootDisk(before) !== isRootDisk(after)) {
      return new TslxcError(
        `Cannot change device "${dev}" of running container "${instance}"`,
        'a device cannot become or stop being the root disk while it runs',
        `stop it first: "tslxc stop ${instance}"`,
      );
    }
    if ((before.pool ?? '') !== (after.pool ?? '')) {
      return new TslxcError(
        `Cannot change the root disk of running container "${instance}"`,
        'its pool cannot change (a container moves with "tslxc move NAME -s POOL")',
        `stop it first: "tslxc stop ${instance}"`,
      );
    }
    return undefined;
  },
  handler: rootDiskHandler,
};
