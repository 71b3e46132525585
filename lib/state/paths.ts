import path from 'node:path';
import { validateInstanceName } from '../util/names.js';

/**
 * Where tslxc keeps things. Everything is derived from three roots so tests (and users who want a
 * second, separate installation) can point them elsewhere:
 *   TSLXC_DIR      config and data (default /var/lib/tslxc)
 *   TSLXC_RUN_DIR  runtime state: pids, sockets, console logs (default /run/tslxc)
 *   TSLXC_CACHE_DIR  build caches shared by every state dir (default /var/cache/tslxc)
 * and the cgroup prefix TSLXC_CGROUP_PREFIX (default "tslxc").
 */
export interface Paths {
  stateDir: string;
  runDir: string;
  cacheDir: string;
  cgroupPrefix: string;
}

export function defaultPaths(env: NodeJS.ProcessEnv = process.env): Paths {
  return {
    stateDir: path.resolve(env.TSLXC_DIR || '/var/lib/tslxc'),
    runDir: path.resolve(env.TSLXC_RUN_DIR || '/run/tslxc'),
    cacheDir: path.resolve(env.TSLXC_CACHE_DIR || '/var/cache/tslxc'),
    cgroupPrefix: env.TSLXC_CGROUP_PREFIX || 'tslxc',
  };
}

export const containersDir = (p: Paths) => path.join(p.stateDir, 'containers');
export const imagesDir = (p: Paths) => path.join(p.stateDir, 'images');
export const locksDir = (p: Paths) => path.join(p.runDir, 'locks');

/** A container's data dir. The name is validated here so no caller can build a path from a bad one. */
export function containerDir(p: Paths, name: string): string {
  return path.join(containersDir(p), validateInstanceName(name));
}
export const containerConfigFile = (p: Paths, name: string) => path.join(containerDir(p, name), 'config.yaml');
export const containerRootfs = (p: Paths, name: string) => path.join(containerDir(p, name), 'rootfs');
export function containerRunDir(p: Paths, name: string): string {
  return path.join(p.runDir, 'containers', validateInstanceName(name));
}
/** The pid of a snapshot or copy holding the container frozen (instance/snapshot.ts withFrozen). */
export const freezeMarkerFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'snapshot-freeze.pid');
