import { networkExists, networkLockFile } from '../network/store.js';
import { applyNetworkLive, prepareNetwork, releaseAfterStop, releaseNetwork, type NetworkDevices } from '../network/instance.js';
import { networkReplay } from '../network/replay.js';
import type { Device } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import type { DeviceHandler, DevicesOf, TargetProblem } from './types.js';

/**
 * The network of a container, for its nic and proxy devices together (network/instance.ts): a
 * proxy forwards to one of its nics' addresses, and both are planned under the networks' lock.
 * At start: addresses reserved, dnsmasq told, DNAT rules, the monitor's hooks; live: veths added
 * or removed in init's network namespace; at stop: all of it released.
 */
const split = (devices: DevicesOf): NetworkDevices => ({ nics: devices.nic, proxies: devices.proxy });

export const networkHandler: DeviceHandler = {
  name: 'network',
  start(t, devices) {
    const devs = split(devices);
    return {
      async prepare(revert) {
        const net = await prepareNetwork(t.ctx, t.cfg, devs);
        revert.add(() => net.undo());
        const helperArgs = [
          ...(net.startHostHook ? ['--start-host-hook', net.startHostHook] : []),
          ...(net.postStopHook ? ['--post-stop-hook', net.postStopHook] : []),
        ];
        return { helperArgs, network: networkReplay(t.ctx.paths, t.cfg.name, devs, networkLockFile(t.ctx.paths), net.steps) };
      },
    };
  },
  async live(t, { to }) {
    return {
      async apply(revert) {
        revert.add(await applyNetworkLive(t.ctx, t.cfg, split(to), t.pid));
        return ['network'];
      },
    };
  },
  // The stop releases the network itself: the monitor's hook need not start a node for it.
  stopping: (ctx, name, monitorPid) => releaseAfterStop(ctx, name, monitorPid),
  stop: (ctx, name) => releaseNetwork(ctx, name),
};

/** A managed network named by a new or changed nic must exist. */
export function missingNetwork(paths: Paths, dev: Device): TargetProblem | undefined {
  if (dev.network && !networkExists(paths, dev.network)) return { why: `network "${dev.network}" does not exist`, fix: 'see "tslxc network list"' };
  return undefined;
}
