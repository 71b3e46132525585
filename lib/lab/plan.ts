import type { Context } from '../state/context.js';
import { listNames, loadConfig, type InstanceConfig } from '../state/config.js';
import type { Device } from '../profile/store.js';
import { volumeName, type LabMember, type LabSpec } from './schema.js';

/**
 * What a lab file means in containers: for each member's container, the profiles, config keys
 * and devices it should have. Containers carry `user.lab` and `user.lab.member`, so a lab's
 * containers are found from the containers themselves and up/down never touch anything else.
 */
export const LAB_KEY = 'user.lab';
export const MEMBER_KEY = 'user.lab.member';
/** The snapshot taken right after create, before the first start: what `lab reset` restores. */
export const START_SNAPSHOT = 'lab-start';

export interface DesiredContainer {
  name: string;
  member: string;
  image: string;
  profiles: string[];
  config: Record<string, string>;
  devices: Record<string, Device>;
}

/** Networks and volumes a lab made carry this description: down removes only those. */
export const labMarker = (lab: string) => `made by tslxc lab "${lab}"`;

export function desiredContainers(spec: LabSpec): DesiredContainer[] {
  return spec.members.flatMap((m) => m.containers.map((c) => desired(spec, m, c.name)));
}

function desired(spec: LabSpec, m: LabMember, name: string): DesiredContainer {
  const devices: Record<string, Device> = { eth0: { type: 'nic', network: spec.network.name, name: 'eth0' } };
  for (const v of spec.volumes) {
    devices[`vol-${v.name}`] = {
      type: 'disk',
      pool: v.pool,
      source: volumeName(spec.name, v, m.name),
      path: v.path,
      ...(v.readonly ? { readonly: 'true' } : {}),
    };
  }
  return { name, member: m.name, image: m.image, profiles: m.profiles, config: { ...m.config, [LAB_KEY]: spec.name, [MEMBER_KEY]: m.name }, devices };
}

/** The lab's existing containers (found by their user.lab key), with their configs. */
export function labContainers(ctx: Context, lab: string): InstanceConfig[] {
  const out: InstanceConfig[] = [];
  for (const n of listNames(ctx.paths)) {
    try {
      const cfg = loadConfig(ctx.paths, n);
      if (cfg.config?.[LAB_KEY] === lab) out.push(cfg);
    } catch {
      /* being deleted */
    }
  }
  return out;
}

/** What differs between a container's config and what the file asks for (empty: nothing). */
export function drift(cfg: InstanceConfig, want: DesiredContainer): string[] {
  const out: string[] = [];
  if (JSON.stringify(cfg.profiles ?? []) !== JSON.stringify(want.profiles)) out.push('profiles');
  const own = Object.fromEntries(Object.entries(cfg.config ?? {}).filter(([k]) => !k.startsWith('volatile.')));
  if (!sameRecord(own, want.config)) out.push('config');
  const devs = cfg.devices ?? {};
  if (Object.keys(devs).length !== Object.keys(want.devices).length || Object.entries(want.devices).some(([k, d]) => !sameRecord(devs[k] ?? {}, d)))
    out.push('devices');
  return out;
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => String(a[k]) === String(b[k]));
}

/** Runs fn over items, at most `limit` at a time; every item runs, failures are collected. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<Array<{ item: T; value?: R; error?: unknown }>> {
  const results: Array<{ item: T; value?: R; error?: unknown }> = items.map((item) => ({ item }));
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i].value = await fn(items[i]);
      } catch (error) {
        results[i].error = error ?? new Error('failed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
