import type { Profile } from '../../profile/store.js';

/** LXD's api.Profile (5.0.2: no project key). */
export interface ApiProfile {
  name: string;
  description: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  used_by: string[];
}

export function profileShape(p: Profile, usedBy: string[]): ApiProfile {
  return { name: p.name, description: p.description, config: { ...p.config }, devices: structuredClone(p.devices), used_by: usedBy };
}

/** What a PUT replaces, and what the ETag hashes. */
export const profileWritable = (p: Pick<Profile, 'description' | 'config' | 'devices'>) => ({
  config: p.config,
  description: p.description,
  devices: p.devices,
});
