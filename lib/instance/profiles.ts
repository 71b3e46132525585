import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { TslxcError } from '../errors.js';
import { validateChange, validateExpanded, validateUnsetKey } from '../config/schema.js';
import { checkDeviceTargets, validateDevice } from '../device/registry.js';
import { hostFacts, type HostFacts } from '../host/facts.js';
import { listNames, loadConfig, saveConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { expandWithProfile, isLive } from './configure.js';
import { applyInstanceLimits } from './limits.js';
import { hotplugDevices } from './hotplug.js';
import { locksDir } from '../state/paths.js';
import { withLock } from '../util/lock.js';
import { expandInstance } from '../profile/expand.js';
import {
  builtinProfilesDir,
  listProfiles,
  loadProfile,
  parseProfile,
  profileExists,
  removeUserProfile,
  saveProfile,
  validateProfileName,
  type Device,
  type Profile,
} from '../profile/store.js';
import { cgroupsOf } from '../cgroup/context.js';

const userFile = (ctx: Context, name: string) => path.join(ctx.paths.stateDir, 'profiles', `${validateProfileName(name)}.yaml`);
const isBuiltinName = (name: string) => fs.existsSync(path.join(builtinProfilesDir, `${validateProfileName(name)}.yaml`));

/** Profile-wide operations are serialised per profile; container locks are taken inside (never the other way round). */
function withProfileLock<T>(ctx: Context, name: string, fn: () => Promise<T>): Promise<T> {
  return withLock(locksDir(ctx.paths), `profile-${validateProfileName(name)}`, fn, { purpose: `profile "${name}"`, timeoutMs: 60_000 });
}

/** Containers whose profile list names this profile. */
export function usedBy(ctx: Context, name: string): string[] {
  return listNames(ctx.paths).filter((n) => {
    try {
      return (loadConfig(ctx.paths, n).profiles ?? []).includes(name);
    } catch {
      return false;
    }
  });
}

export interface ProfileUpdate {
  profile: Profile;
  /** running containers the change was applied to (limits and devices) */
  applied: string[];
}

/** Keys that change are checked against the host too; keys carried over (copy, built-ins) only for syntax. */
function validateProfileContent(ctx: Context, prof: Profile, host: HostFacts | undefined, before?: Profile): void {
  const changed: Record<string, string> = {};
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(prof.config)) (before?.config[k] === v ? kept : changed)[k] = v;
  validateChange(changed, host);
  validateChange(kept);
  for (const [dn, dev] of Object.entries(prof.devices)) {
    validateDevice(dn, dev);
    if (JSON.stringify(before?.devices[dn]) !== JSON.stringify(dev)) checkDeviceTargets(ctx.paths, `profile "${prof.name}"`, dn, dev);
  }
}

/**
 * Change a profile: `mutate` edits a copy, which is validated on its own and, for every container
 * using it, expanded against the host; then it is saved and applied at once to every running
 * container that uses it: device changes live (hotplug), limits re-written. If one of them
 * refuses, the old profile is put back and the containers already changed get their old devices
 * and limits again.
 */
export async function updateProfile(ctx: Context, name: string, mutate: (p: Profile) => void, opts: { host?: HostFacts } = {}): Promise<ProfileUpdate> {
  return withProfileLock(ctx, name, async () => {
    const before = loadProfile(ctx.paths, name);
    const after: Profile = structuredClone(before);
    mutate(after);
    after.name = name;
    const host = opts.host ?? hostFacts();
    validateProfileContent(ctx, after, host, before);
    const users = usedBy(ctx, name);
    for (const n of users) {
      const cfg = loadConfig(ctx.paths, n);
      try {
        validateExpanded(expandWithProfile(ctx, cfg, after).config, host, n);
      } catch (err) {
        throw new TslxcError(`Cannot change profile "${name}"`, `container "${n}" uses it and would get: ${(err as Error).message}`);
      }
    }
    const hadUserFile = fs.existsSync(userFile(ctx, name));
    const oldText = hadUserFile ? fs.readFileSync(userFile(ctx, name), 'utf8') : undefined;
    saveProfile(ctx.paths, after);
    const restore = () => {
      if (oldText !== undefined) saveProfile(ctx.paths, before);
      else removeUserProfile(ctx.paths, name);
    };
    const applied: string[] = [];
    const undos: Array<() => Promise<void>> = [];
    const cg = await cgroupsOf(ctx);
    try {
      for (const n of users) {
        await ctx.withInstanceLock(n, async () => {
          if (!(await isLive(ctx, n))) return;
          const cfg = loadConfig(ctx.paths, n);
          const saved = JSON.stringify(cfg);
          const expanded = expandInstance(ctx.paths, cfg);
          // Devices first (hotplug): a nic's new volatile keys land in cfg, saved once it worked.
          const devices = await hotplugDevices(
            ctx,
            cfg,
            expandInstance(ctx.paths, cfg, (pn) => (pn === name ? before : loadProfile(ctx.paths, pn))).devices,
            expanded.devices,
          );
          undos.push(devices.undo);
          if (JSON.stringify(cfg) !== saved) saveConfig(ctx.paths, cfg);
          await applyInstanceLimits(cg, n, expanded.config);
          applied.push(n);
        });
      }
    } catch (err) {
      restore();
      for (const undo of undos.reverse()) await undo().catch(() => {});
      for (const n of applied) {
        await ctx.withInstanceLock(n, () => applyInstanceLimits(cg, n, expandInstance(ctx.paths, loadConfig(ctx.paths, n)).config)).catch(() => {});
      }
      throw new TslxcError(
        `Cannot change profile "${name}"`,
        `applying it to running container failed: ${(err as Error).message}`,
        'the profile was left as it was',
      );
    }
    return { profile: after, applied };
  });
}

export async function setProfileKeys(ctx: Context, name: string, set: Record<string, string>): Promise<ProfileUpdate> {
  if (Object.keys(set).length === 0) throw new TslxcError('Nothing to set', undefined, 'give KEY=VALUE or KEY VALUE');
  return updateProfile(ctx, name, (p) => Object.assign(p.config, set));
}

export async function unsetProfileKeys(ctx: Context, name: string, keys: string[]): Promise<ProfileUpdate> {
  for (const k of keys) validateUnsetKey(k);
  return updateProfile(ctx, name, (p) => {
    for (const k of keys) {
      if (!(k in p.config)) throw new TslxcError(`Cannot unset ${k} on profile "${name}"`, 'it is not set there');
      delete p.config[k];
    }
  });
}

export async function addProfileDevice(ctx: Context, name: string, dev: string, device: Device): Promise<ProfileUpdate> {
  validateDevice(dev, device);
  return updateProfile(ctx, name, (p) => {
    if (p.devices[dev]) throw new TslxcError(`Cannot add device "${dev}" to profile "${name}"`, 'a device of that name exists', 'remove it first');
    p.devices[dev] = device;
  });
}

export async function removeProfileDevice(ctx: Context, name: string, dev: string): Promise<ProfileUpdate> {
  return updateProfile(ctx, name, (p) => {
    if (!p.devices[dev]) throw new TslxcError(`Cannot remove device "${dev}" from profile "${name}"`, 'no such device');
    delete p.devices[dev];
  });
}

/** profile edit: the whole profile as YAML text, validated before anything is saved. */
export async function replaceProfileFromYaml(ctx: Context, name: string, text: string): Promise<ProfileUpdate> {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new TslxcError(`Invalid YAML for profile "${name}"`, (err as Error).message.split('\n')[0]);
  }
  const parsed = parseProfile(name, doc, false, `"${name}" (edited)`);
  return updateProfile(ctx, name, (p) => {
    p.description = parsed.description;
    p.config = parsed.config;
    p.devices = parsed.devices;
  });
}

export function profileYaml(p: Profile): string {
  return yaml.dump({ name: p.name, description: p.description, config: p.config, devices: p.devices }, { lineWidth: 120, noRefs: true });
}

export async function createProfile(
  ctx: Context,
  name: string,
  init: { description?: string; config?: Record<string, string>; devices?: Record<string, Device> } = {},
  opts: { hostCheck?: boolean } = {},
): Promise<Profile> {
  validateProfileName(name);
  return withProfileLock(ctx, name, async () => {
    if (profileExists(ctx.paths, name)) throw new TslxcError(`Profile "${name}" already exists`, undefined, 'pick another name', { kind: 'conflict' });
    const prof: Profile = {
      name,
      description: init.description ?? '',
      config: { ...(init.config ?? {}) },
      devices: { ...(init.devices ?? {}) },
      builtin: false,
    };
    validateProfileContent(ctx, prof, opts.hostCheck === false ? undefined : hostFacts());
    saveProfile(ctx.paths, prof);
    return prof;
  });
}

export async function copyProfile(ctx: Context, from: string, to: string): Promise<Profile> {
  const src = loadProfile(ctx.paths, from);
  return createProfile(ctx, to, { description: src.description, config: src.config, devices: src.devices }, { hostCheck: false });
}

/** rename: the new name replaces the old one in every container's list (in the same place). */
export async function renameProfile(ctx: Context, from: string, to: string): Promise<string[]> {
  validateProfileName(to);
  if (from === to) throw new TslxcError(`Cannot rename profile "${from}"`, 'the new name is the same');
  if (isBuiltinName(from))
    throw new TslxcError(`Cannot rename profile "${from}"`, 'it is a built-in profile', `copy it instead: "tslxc profile copy ${from} ${to}"`);
  const [a, b] = [from, to].sort();
  return withProfileLock(ctx, a!, () =>
    withProfileLock(ctx, b!, async () => {
      const prof = loadProfile(ctx.paths, from);
      if (profileExists(ctx.paths, to))
        throw new TslxcError(`Cannot rename profile "${from}"`, `a profile "${to}" already exists`, undefined, { kind: 'conflict' });
      saveProfile(ctx.paths, { ...prof, name: to });
      const updated: string[] = [];
      for (const n of usedBy(ctx, from)) {
        await ctx.withInstanceLock(n, async () => {
          const cfg = loadConfig(ctx.paths, n);
          cfg.profiles = cfg.profiles.map((p) => (p === from ? to : p));
          saveConfig(ctx.paths, cfg);
          updated.push(n);
        });
      }
      removeUserProfile(ctx.paths, from);
      return updated;
    }),
  );
}

export async function deleteProfile(ctx: Context, name: string): Promise<void> {
  await withProfileLock(ctx, name, async () => {
    loadProfile(ctx.paths, name);
    const users = usedBy(ctx, name);
    if (users.length > 0) {
      throw new TslxcError(
        `Cannot delete profile "${name}"`,
        `it is used by ${users.length} container(s): ${users.slice(0, 5).join(', ')}${users.length > 5 ? ', ...' : ''}`,
        `remove it from them first with "tslxc profile remove NAME ${name}"`,
        { kind: 'conflict' },
      );
    }
    if (!fs.existsSync(userFile(ctx, name)))
      throw new TslxcError(`Cannot delete profile "${name}"`, 'it is a built-in profile', undefined, { kind: 'conflict' });
    removeUserProfile(ctx.paths, name);
  });
}

export { listProfiles, loadProfile };
