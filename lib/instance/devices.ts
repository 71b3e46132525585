import { TslxcError } from '../errors.js';
import { DEVICE_TYPES, KEY_NAME, validateDeviceName } from '../config/schema.js';
import { validateDiskDevice } from '../storage/disk.js';
import { validateNetworkDevice } from '../network/devices.js';
import { isUnixDevice, validateUnixDevice } from './unixdev.js';

// Not in config/schema.ts: a device's keys are checked by its type's owner (storage, network,
// unixdev), which sit above the key schema. lib/device's registry is to take this over.

/** A device's shape: a known type and well-formed keys. What each type needs is its owner's business (network, storage). */
export function validateDevice(name: string, dev: Record<string, string>): void {
  validateDeviceName(name);
  if (!dev.type) throw new TslxcError(`Invalid device "${name}"`, 'it has no type', `give one of ${DEVICE_TYPES.join(', ')}`);
  if (!(DEVICE_TYPES as readonly string[]).includes(dev.type)) {
    throw new TslxcError(`Invalid device "${name}"`, `unknown type "${dev.type}"`, `use one of ${DEVICE_TYPES.join(', ')}`);
  }
  for (const [k, v] of Object.entries(dev)) {
    if (!KEY_NAME.test(k) && !/^[a-z]$/i.test(k)) throw new TslxcError(`Invalid device "${name}"`, `bad key "${k.slice(0, 40)}"`);
    if (typeof v !== 'string' || v.includes('\0')) throw new TslxcError(`Invalid device "${name}"`, `bad value for "${k}"`);
  }
  if (dev.type === 'disk') validateDiskDevice(name, dev);
  if (isUnixDevice(dev)) validateUnixDevice(name, dev);
  // The shape of nics and proxies; what the host has (the network, a free port) is checked at start.
  if (dev.type === 'nic' || dev.type === 'proxy') validateNetworkDevice(name, dev, undefined, { checkHost: false });
}
