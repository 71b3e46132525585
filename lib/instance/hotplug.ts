import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { parseIdmapJson } from '../config/idmap.js';
import { DEVICE_MODULES, devicesByModule, deviceTypeOf, handlersOf, pick } from '../device/registry.js';
import type { DeviceType, LiveInstance, LiveStep, Named } from '../device/types.js';
import { diffDevices, isEmptyDiff } from '../profile/expand.js';
import type { Device } from '../profile/store.js';
import { containerRunDir, type Paths } from '../state/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import type { RunFile } from '../state/spec.js';
import { Reverter } from '../util/revert.js';
import type { InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { VOLATILE_CURRENT } from './idmap.js';
import { liveness } from '../state/runtime.js';

/**
 * Device changes on a running container (hotplug), as LXD applies them: each device type's
 * handler (lib/device) gets its share of the difference between the devices the container has
 * and those its config now says. The devices in force are recorded in the run dir (devices.json,
 * written at start and after every change), so the change is always that difference.
 */

/** The expanded devices the running container was given: at start, then after each live change. */
export const appliedDevicesFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'devices.json');

export function recordAppliedDevices(p: Paths, name: string, devices: Record<string, Device>): void {
  const f = appliedDevicesRunFile(p, name, devices);
  writeFileAtomic(f.path, f.data, f.mode);
}

/** recordAppliedDevices as data: a start writes it through its spec. */
export function appliedDevicesRunFile(p: Paths, name: string, devices: Record<string, Device>): RunFile {
  return { path: appliedDevicesFile(p, name), mode: 0o600, data: `${JSON.stringify(devices, null, 1)}\n` };
}

export function readAppliedDevices(p: Paths, name: string): Record<string, Device> | undefined {
  try {
    return JSON.parse(fs.readFileSync(appliedDevicesFile(p, name), 'utf8')) as Record<string, Device>;
  } catch {
    return undefined;
  }
}

export interface LiveChange {
  /** what was applied, for the user */
  applied: string[];
  /** puts the container's devices back as they were (a later step of the caller failed) */
  undo(): Promise<void>;
}

const none: LiveChange = { applied: [], undo: async () => {} };

/**
 * The generic loop: the difference between `from` and `to` split by handler (a changed device is
 * removed from its old type's handler and added to its new one's), every module asked whether it
 * can make its changes, every handler's step checked before any is applied, then applied in the
 * registry's order with their undos on one revert list. On failure everything done is undone and
 * the error (one line) is thrown.
 */
export async function applyDeviceChange(
  t: LiveInstance,
  from: Record<string, Device>,
  to: Record<string, Device>,
  modules: readonly DeviceType[] = DEVICE_MODULES,
): Promise<LiveChange & { revert: Reverter }> {
  const diff = diffDevices(from, to);
  const revert = new Reverter();
  if (isEmptyDiff(diff)) return { ...none, revert };
  const moduleOf = (name: string, d: Device) => deviceTypeOf(name, d, modules);
  for (const [dev, c] of diff.changed) {
    for (const m of new Set([moduleOf(dev, c.before), moduleOf(dev, c.after)])) {
      const refused = m.refuseLive?.(t.cfg.name, dev, c.before, c.after);
      if (refused) throw refused;
    }
  }
  const gone: Named[] = [...diff.removed, ...diff.changed.map(([n, c]) => [n, c.before] as Named)];
  const coming: Named[] = [...diff.changed.map(([n, c]) => [n, c.after] as Named), ...diff.added];
  const fromAll = devicesByModule(from, modules);
  const toAll = devicesByModule(to, modules);
  const steps: LiveStep[] = [];
  for (const [handler, keys] of handlersOf(modules)) {
    const mine = ([n, d]: Named) => keys.includes(moduleOf(n, d).key);
    const removed = gone.filter(mine);
    const added = coming.filter(mine);
    if (!removed.length && !added.length) continue;
    const step = await handler.live?.(t, { from: pick(fromAll, keys), to: pick(toAll, keys), removed, added });
    if (step) steps.push(step);
  }
  const applied: string[] = [];
  try {
    for (const step of steps) applied.push(...(await step.apply(revert)));
  } catch (err) {
    await revert.revert();
    throw err;
  }
  return { applied, undo: () => revert.revert(), revert };
}

/** Whether PID runs in a user namespace other than ours (an unprivileged container). */
function inOtherUserns(pid: number): boolean {
  return fs.readlinkSync(`/proc/${pid}/ns/user`) !== fs.readlinkSync('/proc/self/ns/user');
}

/**
 * Applies to the running container the difference between the devices it has (recorded at its
 * start, or `fallback`) and `to`, its new expanded set. New volatile keys (a new nic's hwaddr and
 * address) are written into cfg.config; the caller saves cfg. A container that is not running
 * (no live init) gets nothing: its next start applies the config.
 */
export async function hotplugDevices(ctx: Context, cfg: InstanceConfig, fallback: Record<string, Device>, to: Record<string, Device>): Promise<LiveChange> {
  const p = ctx.paths;
  const name = cfg.name;
  const live = liveness(p, name);
  if (!live.initAlive || !live.files.init) return none;
  const pid = live.files.init.pid;
  const from = readAppliedDevices(p, name) ?? fallback;
  if (isEmptyDiff(diffDevices(from, to))) return none;
  const userns = inOtherUserns(pid);
  const target: LiveInstance = {
    ctx,
    cfg,
    pid,
    userns,
    idmap() {
      if (!userns) return undefined;
      const map = parseIdmapJson(cfg.config?.[VOLATILE_CURRENT]);
      if (!map)
        throw new TslxcError(
          `Cannot change the devices of running container "${name}"`,
          `its id map (${VOLATILE_CURRENT}) is not recorded`,
          `restart it: "tslxc restart ${name}"`,
        );
      return map;
    },
  };
  const change = await applyDeviceChange(target, from, to);
  try {
    recordAppliedDevices(p, name, to);
    change.revert.add(() => recordAppliedDevices(p, name, from));
  } catch (err) {
    await change.undo();
    throw err;
  }
  return { applied: change.applied, undo: change.undo };
}
