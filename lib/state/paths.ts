import path from 'node:path';
import { validateInstanceName } from '../util/names.js';
import layout from './layout.json' with { type: 'json' };

/**
 * Where tslxc keeps things. Everything is derived from three roots so tests (and users who want a
 * second, separate installation) can point them elsewhere:
 *   TSLXC_DIR      config and data (default /var/lib/tslxc)
 *   TSLXC_RUN_DIR  runtime state: pids, sockets, console logs (default /run/tslxc)
 *   TSLXC_CACHE_DIR  build caches shared by every state dir (default /var/cache/tslxc)
 * and the cgroup prefix TSLXC_CGROUP_PREFIX (default "tslxc"). The roots' variables and defaults
 * and the file names below are layout.json's, which the helper's C builds its paths from too.
 */
export interface Paths {
  stateDir: string;
  runDir: string;
  cacheDir: string;
  cgroupPrefix: string;
}

export function defaultPaths(env: NodeJS.ProcessEnv = process.env): Paths {
  return {
    stateDir: path.resolve(env[layout.roots.stateEnv] || layout.roots.stateDefault),
    runDir: path.resolve(env[layout.roots.runEnv] || layout.roots.runDefault),
    cacheDir: path.resolve(env[layout.roots.cacheEnv] || layout.roots.cacheDefault),
    cgroupPrefix: env.TSLXC_CGROUP_PREFIX || 'tslxc',
  };
}

export const containersDir = (p: Paths) => path.join(p.stateDir, layout.state.containers);
export const imagesDir = (p: Paths) => path.join(p.stateDir, layout.state.images);
export const locksDir = (p: Paths) => path.join(p.runDir, layout.run.locks);
export const startPlansDir = (p: Paths) => path.join(p.runDir, layout.run.plans);
/** The processes making built images' exports ahead of time (lib/image/kept-export.ts). */
export const exportKeepersDir = (p: Paths) => path.join(p.runDir, layout.run.exportKeepers);
/** The plan of `image import`'s pass the CLI's native front starts before node (lib/image/pass.ts). */
export const importPlanFile = (p: Paths) => path.join(p.runDir, layout.run.importPlan);

/** A container's data dir. The name is validated here so no caller can build a path from a bad one. */
export function containerDir(p: Paths, name: string): string {
  return path.join(containersDir(p), validateInstanceName(name));
}
export const containerConfigFile = (p: Paths, name: string) => path.join(containerDir(p, name), layout.container.config);
export const containerRootfs = (p: Paths, name: string) => path.join(containerDir(p, name), layout.container.rootfs);
export function containerRunDir(p: Paths, name: string): string {
  return path.join(p.runDir, layout.run.containers, validateInstanceName(name));
}

/** The files of a container's run dir, by role (native/README.md says who writes each). */
export const RUN_FILES = layout.instanceRun;
export type RunFile = keyof typeof RUN_FILES;
export const containerRunFile = (p: Paths, name: string, file: RunFile) => path.join(containerRunDir(p, name), RUN_FILES[file]);
/** The pid of a snapshot or copy holding the container frozen (instance/snapshot.ts withFrozen). */
export const freezeMarkerFile = (p: Paths, name: string) => containerRunFile(p, name, 'freezeMarker');
/** Logs tslxc keeps about itself (the API's audit log). */
export const logsDir = (p: Paths) => path.join(p.stateDir, 'logs');
