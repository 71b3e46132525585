import type { Paths } from '../state/paths.js';
import type { InstanceConfig } from '../instance/config.js';
import { loadProfile, type Device } from './store.js';

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

export function expandInstance(p: Paths, cfg: Pick<InstanceConfig, 'profiles' | 'config' | 'devices'>): Expanded {
  const out: Expanded = { config: {}, devices: {}, sources: {} };
  const layers = (cfg.profiles ?? []).map((name) => {
    const prof = loadProfile(p, name);
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
