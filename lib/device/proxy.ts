import { validateProxy } from '../network/devices.js';
import { networkHandler } from './network.js';
import type { DeviceType } from './types.js';

/**
 * proxy: DNAT from a host address and port to one of the container's nics (nft rules in the
 * project's table). Its keys: network/devices.ts; its work: the network handler.
 */
export const proxyDevice: DeviceType = {
  key: 'proxy',
  types: ['proxy'],
  // The shape only: a free listen port is checked at start.
  validate: (name, dev) => validateProxy(name, dev, { checkHost: false }),
  handler: networkHandler,
};
