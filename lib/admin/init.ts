import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { validateChange } from '../config/schema.js';
import { validateDevice } from '../device/registry.js';
import { hostFacts } from '../host/facts.js';
import { hostFeatures } from '../host/features.js';
import { writeYamlAtomic } from '../util/yaml.js';
import { readYamlIfExists } from '../util/yaml.js';
import { Reverter } from '../util/revert.js';
import { profileExists, validateProfileName } from '../profile/store.js';
import { createProfile, deleteProfile, loadProfile, updateProfile } from '../instance/profiles.js';
import { createPool, deletePool } from '../storage/manage.js';
import { listPools } from '../storage/pool.js';
import { createNetwork, deleteNetwork } from '../network/manage.js';
import { networkExists } from '../network/store.js';

/**
 * `tslxc admin init`: first-run set-up in the shape of LXD's preseed YAML (the interactive
 * questions and --auto produce the same document, so all three paths run the same code):
 *
 *   config: {}                       # host-wide keys (none yet)
 *   storage_pools: [{ name, driver, config, description }]
 *   networks:      [{ name, type: bridge, config: { ipv4.address, ipv4.nat, ... }, description }]
 *   profiles:      [{ name, description, config, devices }]
 *
 * Everything is validated before anything is made; pools and networks made by a run that then
 * fails are removed again. What was applied is recorded in TSLXC_DIR/config.yaml.
 */
export interface Preseed {
  config?: Record<string, string>;
  storage_pools?: Array<{ name: string; driver: string; config?: Record<string, string>; description?: string }>;
  networks?: Array<{ name: string; type?: string; config?: Record<string, string>; description?: string }>;
  profiles?: Array<{ name: string; description?: string; config?: Record<string, string>; devices?: Record<string, Record<string, string>> }>;
}

export interface InitResult {
  pools: string[];
  networks: string[];
  profiles: string[];
  /** things recorded but not done, and why */
  notes: string[];
}

const hostConfigFile = (ctx: Context) => path.join(ctx.paths.stateDir, 'config.yaml');

/** The defaults --auto takes and the questions offer: overlay where the kernel has it, a NAT bridge on a free subnet. */
export function defaultPreseed(opts: { network?: boolean } = {}): Preseed {
  const driver = hostFeatures().overlay ? 'overlay' : 'dir';
  const withNet = opts.network !== false;
  return {
    config: {},
    storage_pools: [{ name: 'default', driver, config: {} }],
    networks: withNet ? [{ name: 'tslxcbr0', type: 'bridge', config: { 'ipv4.address': 'auto', 'ipv4.nat': 'true' } }] : [],
    profiles: [
      {
        name: 'default',
        description: 'Default tslxc profile',
        config: {},
        devices: {
          root: { type: 'disk', path: '/', pool: 'default' },
          ...(withNet ? { eth0: { type: 'nic', network: 'tslxcbr0', name: 'eth0' } } : {}),
        },
      },
    ],
  };
}

export function parsePreseed(text: string, where: string): Preseed {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new TslxcError(`Invalid preseed ${where}`, (err as Error).message.split('\n')[0]);
  }
  if (doc === null || doc === undefined) doc = {};
  const bad = (why: string) => new TslxcError(`Invalid preseed ${where}`, why);
  if (typeof doc !== 'object' || Array.isArray(doc)) throw bad('expected a YAML mapping');
  const d = doc as Record<string, unknown>;
  const known = ['config', 'storage_pools', 'networks', 'profiles', 'cluster', 'projects'];
  for (const k of Object.keys(d)) if (!known.includes(k)) throw bad(`unknown key "${k}" (allowed: config, storage_pools, networks, profiles)`);
  if (d.cluster || d.projects) throw bad('"cluster" and "projects" are not supported by tslxc');
  const strMap = (v: unknown, what: string): Record<string, string> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw bad(`${what} must be a mapping`);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  };
  const list = (v: unknown, what: string): Record<string, unknown>[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => !x || typeof x !== 'object' || Array.isArray(x))) throw bad(`${what} must be a list of mappings`);
    return v as Record<string, unknown>[];
  };
  const named = (x: Record<string, unknown>, what: string) => {
    if (typeof x.name !== 'string' || !x.name) throw bad(`an entry of ${what} has no name`);
    return x.name;
  };
  if (d.config && Object.keys(strMap(d.config, 'config')).length > 0) throw bad('host-wide "config" keys are not supported yet (leave it empty)');
  return {
    config: {},
    storage_pools: list(d.storage_pools, 'storage_pools').map((x) => ({
      name: named(x, 'storage_pools'),
      driver: String(x.driver ?? ''),
      config: strMap(x.config, "a storage pool's config"),
      description: x.description === undefined ? undefined : String(x.description),
    })),
    networks: list(d.networks, 'networks').map((x) => ({
      name: named(x, 'networks'),
      type: x.type === undefined ? 'bridge' : String(x.type),
      config: strMap(x.config, "a network's config"),
      description: x.description === undefined ? undefined : String(x.description),
    })),
    profiles: list(d.profiles, 'profiles').map((x) => {
      const devices: Record<string, Record<string, string>> = {};
      for (const [dn, dev] of Object.entries(strMapOfMaps(x.devices, bad))) devices[dn] = dev;
      return {
        name: named(x, 'profiles'),
        description: x.description === undefined ? undefined : String(x.description),
        config: strMap(x.config, "a profile's config"),
        devices,
      };
    }),
  };
}

function strMapOfMaps(v: unknown, bad: (why: string) => Error): Record<string, Record<string, string>> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad("a profile's devices must be a mapping");
  const out: Record<string, Record<string, string>> = {};
  for (const [k, dev] of Object.entries(v)) {
    if (!dev || typeof dev !== 'object' || Array.isArray(dev)) throw bad(`device "${k}" must be a mapping`);
    out[k] = Object.fromEntries(Object.entries(dev).map(([a, b]) => [a, String(b)]));
  }
  return out;
}

export async function applyPreseed(ctx: Context, seed: Preseed): Promise<InitResult> {
  const host = hostFacts();
  const result: InitResult = { pools: [], networks: [], profiles: [], notes: [] };
  // Validate everything first.
  for (const prof of seed.profiles ?? []) {
    validateProfileName(prof.name);
    try {
      validateChange(prof.config ?? {}, host);
      for (const [dn, dev] of Object.entries(prof.devices ?? {})) validateDevice(dn, dev);
    } catch (err) {
      throw new TslxcError(`Invalid preseed profile "${prof.name}"`, (err as Error).message);
    }
  }
  for (const net of seed.networks ?? []) {
    if (net.type && net.type !== 'bridge') throw new TslxcError(`Invalid preseed network "${net.name}"`, `type "${net.type}" is not supported`, 'use bridge');
  }

  await Reverter.run(async (revert) => {
    for (const pool of seed.storage_pools ?? []) {
      if (listPools(ctx.paths).some((p) => p.name === pool.name)) {
        result.notes.push(`storage pool "${pool.name}" exists already: left as it is`);
        continue;
      }
      await createPool(ctx, pool.name, pool.driver, pool.config ?? {}, pool.description);
      revert.add(() => deletePool(ctx, pool.name));
      result.pools.push(pool.name);
    }
    for (const net of seed.networks ?? []) {
      if (networkExists(ctx.paths, net.name)) {
        result.notes.push(`network "${net.name}" exists already: left as it is`);
        continue;
      }
      await createNetwork(ctx.paths, net.name, net.config ?? {}, net.description ?? '');
      revert.add(() => deleteNetwork(ctx.paths, net.name));
      result.networks.push(net.name);
    }
    for (const prof of seed.profiles ?? []) {
      const body = { description: prof.description ?? '', config: prof.config ?? {}, devices: prof.devices ?? {} };
      if (profileExists(ctx.paths, prof.name)) {
        // A later failure puts the profile back as it was (and so the containers using it).
        const before = loadProfile(ctx.paths, prof.name);
        await updateProfile(
          ctx,
          prof.name,
          (p) => {
            if (prof.description !== undefined) p.description = body.description;
            p.config = body.config;
            p.devices = body.devices;
          },
          { host },
        );
        revert.add(() =>
          updateProfile(ctx, prof.name, (p) => {
            p.description = before.description;
            p.config = before.config;
            p.devices = before.devices;
          }).then(() => undefined),
        );
      } else {
        await createProfile(ctx, prof.name, body);
        revert.add(() => deleteProfile(ctx, prof.name));
      }
      result.profiles.push(prof.name);
    }
  });
  const prev = readYamlIfExists<Record<string, unknown>>(hostConfigFile(ctx)) ?? {};
  fs.mkdirSync(ctx.paths.stateDir, { recursive: true, mode: 0o711 });
  writeYamlAtomic(hostConfigFile(ctx), { ...prev, initialized_at: new Date().toISOString(), preseed: seed, notes: result.notes }, 0o600);
  return result;
}
