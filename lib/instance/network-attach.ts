import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { updateInstance, type UpdateResult } from './configure.js';
import { validateNic } from '../network/devices.js';
import { loadNetwork } from '../network/store.js';

/**
 * `network attach|detach`: add or remove a nic device in a container's own config. A running
 * container gets (or loses) the nic at once, through updateInstance like every device change.
 */
export async function attachNetwork(ctx: Context, network: string, container: string, device?: string, ifname?: string): Promise<UpdateResult> {
  loadNetwork(ctx.paths, network);
  const dev = device ?? network;
  return updateInstance(ctx, container, (cfg) => {
    if (cfg.devices[dev]) throw new TslxcError(`Cannot attach "${container}" to "${network}"`, `it already has a device "${dev}"`, 'give another device name');
    const nic = { type: 'nic', network, name: ifname ?? dev };
    validateNic(dev, nic, ctx.paths);
    cfg.devices[dev] = nic;
  });
}

export async function detachNetwork(ctx: Context, network: string, container: string, device?: string): Promise<UpdateResult> {
  return updateInstance(ctx, container, (cfg) => {
    const names = Object.entries(cfg.devices)
      .filter(([n, d]) => d.type === 'nic' && d.network === network && (!device || n === device))
      .map(([n]) => n);
    if (!names.length) {
      throw new TslxcError(
        `Cannot detach "${container}" from "${network}"`,
        `it has no nic${device ? ` "${device}"` : ''} of its own on that network`,
        'a nic from a profile is overridden with "tslxc config device add NAME DEV none"',
      );
    }
    for (const n of names) {
      delete cfg.devices[n];
      for (const k of Object.keys(cfg.config)) if (k.startsWith(`volatile.${n}.`)) delete cfg.config[k];
    }
  });
}
