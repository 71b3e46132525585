import { TslxcError } from '../errors.js';
import { validateChange, validateExpanded, validateUnsetKey } from '../config/schema.js';
import { validateDevice } from '../device/registry.js';
import { hostFacts, type HostFacts } from '../host/facts.js';
import { expandInstance, type Expanded } from '../profile/expand.js';
import { loadProfile, type Profile } from '../profile/store.js';
import { loadConfig, saveConfig, type InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { applyInstanceLimits } from './limits.js';
import { liveness } from '../state/runtime.js';
import { checkRootDisk } from '../storage/instance.js';
import { hotplugDevices } from './hotplug.js';
import { cgroupsOf } from '../cgroup/context.js';

export interface UpdateResult {
  config: InstanceConfig;
  /** the change was applied to the running container (limits and devices) */
  appliedLive: boolean;
  /** what the user should know (what was applied live) */
  notes: string[];
}

/** Whether the container has processes whose cgroups limits can be written to now. */
export async function isLive(ctx: Context, name: string): Promise<boolean> {
  const live = liveness(ctx.paths, name);
  if (!live.initAlive && !live.monitorAlive) return false;
  return (await cgroupsOf(ctx)).exists(name);
}

/**
 * Change a container's config under its lock: `mutate` edits a copy, the copy is validated as a
 * whole (its own keys and, expanded with its profiles, against the host). A stopped container
 * just gets it saved. A running one gets it applied first: device changes live (hotplug), then
 * the config saved and the limits written. If any step fails, what was applied is undone and the
 * old config stays, so a refused change leaves nothing behind.
 */
export async function updateInstance(
  ctx: Context,
  name: string,
  mutate: (cfg: InstanceConfig) => void,
  opts: { host?: HostFacts } = {},
): Promise<UpdateResult> {
  return ctx.withInstanceLock(name, async () => {
    const before = loadConfig(ctx.paths, name);
    const after: InstanceConfig = structuredClone(before);
    after.config ??= {};
    after.devices ??= {};
    after.profiles ??= [];
    mutate(after);
    const host = opts.host ?? hostFacts();
    const changed: Record<string, string> = {};
    for (const [k, v] of Object.entries(after.config)) if (before.config?.[k] !== v) changed[k] = v;
    validateChange(changed, host);
    for (const [dn, dev] of Object.entries(after.devices)) validateDevice(dn, dev);
    const expanded = expandInstance(ctx.paths, after);
    validateExpanded(expanded.config, host, name);
    checkRootDisk(ctx, name, expanded.devices);

    if (!(await isLive(ctx, name))) {
      saveConfig(ctx.paths, after);
      return { config: after, appliedLive: false, notes: [] };
    }
    const devices = await hotplugDevices(ctx, after, expandInstance(ctx.paths, before).devices, expanded.devices);
    const cg = await cgroupsOf(ctx);
    try {
      saveConfig(ctx.paths, after);
      await applyInstanceLimits(cg, name, expanded.config);
    } catch (err) {
      saveConfig(ctx.paths, before);
      await applyInstanceLimits(cg, name, expandInstance(ctx.paths, before).config).catch(() => {});
      await devices.undo();
      throw new TslxcError(`Cannot apply the change to running container "${name}"`, (err as Error).message, 'nothing was changed');
    }
    const notes = devices.applied.length ? [`applied to running container "${name}": ${devices.applied.join(', ')}`] : [];
    return { config: after, appliedLive: true, notes };
  });
}

export async function setConfig(ctx: Context, name: string, set: Record<string, string>): Promise<UpdateResult> {
  if (Object.keys(set).length === 0) throw new TslxcError('Nothing to set', undefined, 'give KEY=VALUE or KEY VALUE');
  return updateInstance(ctx, name, (cfg) => {
    for (const [k, v] of Object.entries(set)) cfg.config[k] = v;
  });
}

export async function unsetConfig(ctx: Context, name: string, keys: string[]): Promise<UpdateResult> {
  for (const k of keys) validateUnsetKey(k);
  return updateInstance(ctx, name, (cfg) => {
    for (const k of keys) {
      if (!(k in cfg.config))
        throw new TslxcError(
          `Cannot unset ${k} on "${name}"`,
          'it is not set on the container',
          `"tslxc config show ${name} --expanded" shows where values come from`,
        );
      delete cfg.config[k];
    }
  });
}

/** An empty description is none: the config keeps no empty key. */
export function setDescription(cfg: InstanceConfig, description: string): void {
  if (description) cfg.description = description;
  else delete cfg.description;
}

/** Replace the whole local config and devices (config edit). */
export async function replaceConfig(
  ctx: Context,
  name: string,
  next: { config: Record<string, string>; devices: Record<string, Record<string, string>>; profiles: string[]; description?: string },
): Promise<UpdateResult> {
  return updateInstance(ctx, name, (cfg) => {
    cfg.config = next.config;
    cfg.devices = next.devices;
    cfg.profiles = next.profiles;
    if (next.description !== undefined) setDescription(cfg, next.description);
  });
}

export async function addDevice(ctx: Context, name: string, dev: string, device: Record<string, string>): Promise<UpdateResult> {
  validateDevice(dev, device);
  return updateInstance(ctx, name, (cfg) => {
    if (cfg.devices[dev])
      throw new TslxcError(
        `Cannot add device "${dev}" to "${name}"`,
        'a device of that name exists',
        `remove it first with "tslxc config device remove ${name} ${dev}"`,
      );
    cfg.devices[dev] = device;
  });
}

export async function removeDevice(ctx: Context, name: string, dev: string): Promise<UpdateResult> {
  return updateInstance(ctx, name, (cfg) => {
    if (!cfg.devices[dev]) {
      const inherited = expandInstance(ctx.paths, cfg).devices[dev];
      throw new TslxcError(
        `Cannot remove device "${dev}" from "${name}"`,
        inherited ? 'it comes from a profile' : 'no such device',
        inherited ? `override it with "tslxc config device add ${name} ${dev} none"` : undefined,
      );
    }
    delete cfg.devices[dev];
  });
}

/** Profiles on a container: add at the end, remove, or replace the list. */
export async function setProfiles(ctx: Context, name: string, change: { add?: string; remove?: string; assign?: string[] }): Promise<UpdateResult> {
  for (const p of [change.add, change.remove, ...(change.assign ?? [])]) if (p !== undefined) loadProfile(ctx.paths, p);
  return updateInstance(ctx, name, (cfg) => {
    if (change.add !== undefined) {
      if (cfg.profiles.includes(change.add)) throw new TslxcError(`Profile "${change.add}" is already applied to "${name}"`);
      cfg.profiles.push(change.add);
    }
    if (change.remove !== undefined) {
      if (!cfg.profiles.includes(change.remove)) throw new TslxcError(`Profile "${change.remove}" is not applied to "${name}"`);
      cfg.profiles = cfg.profiles.filter((p) => p !== change.remove);
    }
    if (change.assign) {
      const dup = change.assign.find((p, i) => change.assign!.indexOf(p) !== i);
      if (dup) throw new TslxcError(`Profile "${dup}" is listed twice`);
      cfg.profiles = [...change.assign];
    }
  });
}

/** config show: the local config, or the expanded one with where each value came from. */
export function showConfig(
  ctx: Context,
  name: string,
  expanded: boolean,
): { config: InstanceConfig; expanded?: Expanded & { readOnly: Record<string, string> } } {
  const cfg = loadConfig(ctx.paths, name);
  if (!expanded) return { config: cfg };
  const ex = expandInstance(ctx.paths, cfg);
  const readOnly: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg.image ?? {})) if (v !== undefined) readOnly[`image.${k}`] = String(v);
  return { config: cfg, expanded: { ...ex, readOnly } };
}

/** Re-expand a container against a profile about to change, for validation before saving it. */
export function expandWithProfile(ctx: Context, cfg: InstanceConfig, profile: Profile): Expanded {
  return expandInstance(ctx.paths, cfg, (n) => (n === profile.name ? profile : loadProfile(ctx.paths, n)));
}
