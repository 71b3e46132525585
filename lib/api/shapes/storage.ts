import type { PoolConfig } from '../../storage/pool.js';
import type { VolumeInfo } from '../../storage/volume.js';

/** LXD's api.StoragePool. */
export interface ApiStoragePool {
  name: string;
  description: string;
  driver: string;
  status: string;
  config: Record<string, string>;
  used_by: string[];
  locations: string[];
}

export function poolShape(pool: PoolConfig, source: string | undefined, usedBy: string[]): ApiStoragePool {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(pool.config ?? {})) config[k] = String(v);
  if (source) config.source ??= source;
  return { name: pool.name, description: pool.description ?? '', driver: pool.driver, status: 'Created', config, used_by: usedBy, locations: ['none'] };
}

export const poolWritable = (pool: PoolConfig) => ({ config: pool.config, description: pool.description ?? '' });

/** LXD's api.StorageVolume (5.0.2 has project and location, no pool key). */
export interface ApiStorageVolume {
  name: string;
  description: string;
  type: 'custom' | 'container';
  content_type: string;
  config: Record<string, string>;
  used_by: string[];
  created_at: string;
  location: string;
  project: string;
}

export function volumeShape(
  v: Pick<VolumeInfo, 'name' | 'description' | 'created_at' | 'config'>,
  type: ApiStorageVolume['type'],
  usedBy: string[],
): ApiStorageVolume {
  return {
    name: v.name,
    description: v.description ?? '',
    type,
    content_type: 'filesystem',
    config: { ...(v.config ?? {}) },
    used_by: usedBy,
    created_at: v.created_at,
    location: 'none',
    project: 'default',
  };
}

export const volumeWritable = (v: Pick<ApiStorageVolume, 'config' | 'description'>) => ({ config: v.config, description: v.description });
