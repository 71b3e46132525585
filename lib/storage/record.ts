import path from 'node:path';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import type { DriverName } from './pool.js';

/**
 * What storage a container's root lives on: INSTANCE_DIR/storage.yaml. It moves with the container
 * dir (rename, copy), so a container keeps its pool whatever later happens to profiles. A container
 * made before pools existed has none and is treated as a `dir` root in INSTANCE_DIR/rootfs.
 */
export interface StorageRecord {
  pool?: string;
  driver: DriverName;
  /** The image layers under an overlay root, top first (fingerprints). */
  image?: string;
  /** On an overlay pool: the root is a whole tree with no lower layer (copied in from another pool). */
  flat?: boolean;
}

export const recordFile = (instDir: string) => path.join(instDir, 'storage.yaml');

export function readRecord(instDir: string): StorageRecord {
  return readYamlIfExists<StorageRecord>(recordFile(instDir)) ?? { driver: 'dir' };
}

export function writeRecord(instDir: string, rec: StorageRecord): void {
  writeYamlAtomic(recordFile(instDir), rec, 0o600);
}
