import { validateNic } from '../network/devices.js';
import { missingNetwork, networkHandler } from './network.js';
import type { DeviceType } from './types.js';

/**
 * nic: a veth pair, the host end on a managed network's bridge (network=NAME) or an existing host
 * bridge (parent=BRIDGE). Its keys: network/devices.ts; its work: the network handler.
 */
export const nicDevice: DeviceType = {
  key: 'nic',
  types: ['nic'],
  // The shape only: what the host has (the network up, a free address) is checked at start.
  validate: (name, dev) => validateNic(name, dev, undefined, { checkHost: false }),
  checkTargets: (paths, _name, dev) => missingNetwork(paths, dev),
  handler: networkHandler,
};
