import type { Paths } from '../state/paths.js';
import type { InstanceConfig } from '../state/config.js';
import { loadProfile, type Device, type Profile } from './store.js';

/**
 * A container's effective config: its profiles applied in order (later ones override earlier ones
 * key by key; devices merge by name, and a device of `type: none` removes an inherited one), then
 * its own config and devices, which win. Each value remembers where it came from.
 */
export interface Expanded {
  config: Record<string, string>;
  devices: Record<string, Device>;
  /** key or "devices.NAME" → "profile:NAME" or "local" */
  sources: Record<string, string>;
}

/** `load` lets a caller expand against a profile that is about to change (validate before saving). */
export function expandInstance(
  p: Paths,
  cfg: Pick<InstanceConfig, 'profiles' | 'config' | 'devices'>,
  load: (name: string) => Profile = (name) => loadProfile(p, name),
): Expanded {
  const out: Expanded = { config: {}, devices: {}, sources: {} };
  const layers = (cfg.profiles ?? []).map((name) => {
    const prof = load(name);
    return { source: `profile:${name}`, config: prof.config, devices: prof.devices };
  });
  layers.push({ source: 'local', config: cfg.config ?? {}, devices: cfg.devices ?? {} });
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.config)) {
      out.config[k] = v;
      out.sources[k] = layer.source;
    }
    for (const [name, dev] of Object.entries(layer.devices)) {
      if (dev.type === 'none') {
        delete out.devices[name];
        out.sources[`devices.${name}`] = `${layer.source} (removed)`;
      } else {
        out.devices[name] = { ...dev };
        out.sources[`devices.${name}`] = layer.source;
      }
    }
  }
  return out;
}

/** What changes between two expanded device sets: by name; a device whose keys differ is `changed`. */
export interface DeviceDiff {
  added: Array<[string, Device]>;
  removed: Array<[string, Device]>;
  changed: Array<[string, { before: Device; after: Device }]>;
}

export function sameDevice(a: Device, b: Device): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/**
 * The one place that says how a container's devices change (config edits, profile edits, lab
 * up): names sorted, so changes are applied in a stable order.
 */
export function diffDevices(before: Record<string, Device>, after: Record<string, Device>): DeviceDiff {
  const diff: DeviceDiff = { added: [], removed: [], changed: [] };
  for (const name of Object.keys(before).sort()) {
    if (!(name in after)) diff.removed.push([name, before[name]]);
    else if (!sameDevice(before[name], after[name])) diff.changed.push([name, { before: before[name], after: after[name] }]);
  }
  for (const name of Object.keys(after).sort()) if (!(name in before)) diff.added.push([name, after[name]]);
  return diff;
}

export function isEmptyDiff(d: DeviceDiff): boolean {
  return !d.added.length && !d.removed.length && !d.changed.length;
}
