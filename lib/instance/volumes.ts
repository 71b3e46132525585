import { TslxcError } from '../errors.js';
import { resolveVolume, usesVolume } from '../storage/volume.js';
import { updateInstance } from './configure.js';
import type { Context } from '../state/context.js';

// A custom volume given to or taken from a container is a change to its disk devices, so it lives
// above both storage/volume.ts and configure.ts.

/** Gives the volume to a container as a disk device (named after the volume unless `device` is given). */
export async function attachVolume(ctx: Context, poolName: string, vol: string, container: string, mountPath: string, device = vol): Promise<void> {
  resolveVolume(ctx.paths, poolName, vol);
  await updateInstance(ctx, container, (cfg) => {
    if (cfg.devices[device])
      throw new TslxcError(`Cannot attach "${poolName}/${vol}" to "${container}"`, `it has a device named "${device}"`, 'give another device name');
    cfg.devices[device] = { type: 'disk', pool: poolName, source: vol, path: mountPath };
  });
}

export async function detachVolume(ctx: Context, poolName: string, vol: string, container: string): Promise<void> {
  await updateInstance(ctx, container, (cfg) => {
    const names = Object.entries(cfg.devices)
      .filter(([, d]) => usesVolume(d, poolName, vol))
      .map(([n]) => n);
    if (!names.length) throw new TslxcError(`Cannot detach "${poolName}/${vol}" from "${container}"`, 'it is not attached to it');
    for (const n of names) delete cfg.devices[n];
  });
}
