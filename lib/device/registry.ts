import { TslxcError } from '../errors.js';
import { validateDeviceKeys, validateDeviceName } from '../config/schema.js';
import type { DeviceRule } from '../cgroup/devices.js';
import type { NetworkReplay } from '../network/replay.js';
import type { Device } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import type { Reverter } from '../util/revert.js';
import type { RunFile } from '../state/spec.js';
import { diskDevice } from './disk.js';
import { rootDiskDevice } from './root-disk.js';
import { nicDevice } from './nic.js';
import { proxyDevice } from './proxy.js';
import { unixDevice } from './unix.js';
import { noneDevice } from './none.js';
import type { DeviceHandler, DevicesOf, DeviceType, Named, StartInstance } from './types.js';

/**
 * The device types tslxc knows, one module each (README.md in this dir: how to add one). The
 * order is the order of their work: at start, and on a running container (old disks unmounted
 * and new ones mounted before the network changes, as LXD does).
 */
export const DEVICE_MODULES: readonly DeviceType[] = [diskDevice, rootDiskDevice, nicDevice, proxyDevice, unixDevice, noneDevice];

/** The values a device's `type` may take. */
export const deviceTypeNames = (modules: readonly DeviceType[] = DEVICE_MODULES) => [...new Set(modules.flatMap((m) => m.types))];

/** The module a device belongs to; a one-line error for a missing or unknown type. */
export function deviceTypeOf(name: string, dev: Device, modules: readonly DeviceType[] = DEVICE_MODULES): DeviceType {
  const m = dev.type ? modules.find((x) => x.types.includes(dev.type) && (!x.owns || x.owns(dev))) : undefined;
  if (m) return m;
  const known = deviceTypeNames(modules).join(', ');
  if (!dev.type) throw new TslxcError(`Invalid device "${name}"`, 'it has no type', `give one of ${known}`);
  throw new TslxcError(`Invalid device "${name}"`, `unknown type "${dev.type}"`, `use one of ${known}`);
}

/** A device as config: its name, a known type, keys well-formed, then what its type takes. */
export function validateDevice(name: string, dev: Device, modules: readonly DeviceType[] = DEVICE_MODULES): void {
  validateDeviceName(name);
  const m = deviceTypeOf(name, dev, modules);
  validateDeviceKeys(name, dev);
  m.validate(name, dev);
}

/** What a new or changed device names that must exist (a pool, a network), as LXD refuses it. */
export function checkDeviceTargets(paths: Paths, owner: string, name: string, dev: Device, modules: readonly DeviceType[] = DEVICE_MODULES): void {
  const problem = deviceTypeOf(name, dev, modules).checkTargets?.(paths, name, dev);
  if (problem) throw new TslxcError(`Invalid device "${name}" of ${owner}`, problem.why, problem.fix);
}

/** The handlers of the modules, in the registry's order, each with its modules' keys. */
export function handlersOf(modules: readonly DeviceType[] = DEVICE_MODULES): Map<DeviceHandler, string[]> {
  const out = new Map<DeviceHandler, string[]>();
  for (const m of modules) if (m.handler) out.set(m.handler, [...(out.get(m.handler) ?? []), m.key]);
  return out;
}

/** An expanded device set, by module key (every key there), names sorted. */
export function devicesByModule(devices: Record<string, Device>, modules: readonly DeviceType[] = DEVICE_MODULES): DevicesOf {
  const out: DevicesOf = Object.fromEntries(modules.map((m) => [m.key, [] as Named[]]));
  for (const name of Object.keys(devices).sort()) out[deviceTypeOf(name, devices[name], modules).key].push([name, devices[name]]);
  return out;
}

/** The part of `all` a handler gets: its modules' keys. */
export const pick = (all: DevicesOf, keys: string[]): DevicesOf => Object.fromEntries(keys.map((k) => [k, all[k] ?? []]));

/** What the devices of a container need at its start, from every handler. */
export interface DeviceStart {
  cgroupRules: DeviceRule[];
  /** why a saved start plan cannot replay it, if one says so */
  unreplayable?: string;
  /** what each handler must do in TypeScript before the spec runs (undos on `revert`) */
  prepare(revert: Reverter): Promise<{ helperArgs: string[]; network?: NetworkReplay }>;
  /** the run dir files, as data (the start spec writes them) */
  files(): RunFile[];
}

/**
 * The start's device steps, one loop over the handlers: each is asked first (before anything is
 * made, so a missing required host node fails the start with nothing to undo), then prepares
 * and gives its files as data. Every handler is asked at every start, with its devices or none: a
 * container without devices still gets its (empty) disks and nodes files, as before.
 */
export function startDevices(t: StartInstance, devices: Record<string, Device>, modules: readonly DeviceType[] = DEVICE_MODULES): DeviceStart {
  const all = devicesByModule(devices, modules);
  const parts = [...handlersOf(modules)].flatMap(([h, keys]) => (h.start ? [h.start(t, pick(all, keys))] : []));
  return {
    cgroupRules: parts.flatMap((p) => p.cgroupRules ?? []),
    unreplayable: parts.find((p) => p.unreplayable)?.unreplayable,
    async prepare(revert) {
      const helperArgs = parts.flatMap((p) => p.helperArgs ?? []);
      let network: NetworkReplay | undefined;
      for (const p of parts) {
        if (!p.prepare) continue;
        const r = await p.prepare(revert);
        helperArgs.push(...(r.helperArgs ?? []));
        network ??= r.network;
      }
      return { helperArgs, network };
    },
    files() {
      return parts.flatMap((p) => p.files?.() ?? []);
    },
  };
}
