import type { Context } from '../../state/context.js';
import type { Route } from '../types.js';
import * as consoleRoutes from './console.js';
import * as dashboard from './dashboard.js';
import * as exec from './exec.js';
import * as files from './files.js';
import * as images from './images.js';
import * as instances from './instances.js';
import * as labs from './labs.js';
import * as logs from './logs.js';
import * as metrics from './metrics.js';
import * as networks from './networks.js';
import * as profiles from './profiles.js';
import * as snapshots from './snapshots.js';
import * as storage from './storage.js';

const modules = [instances, snapshots, exec, files, logs, consoleRoutes, images, profiles, networks, storage, labs, metrics, dashboard];

/** Every route of the API; each module under routes/ adds its list here. */
export const routes: Route[] = modules.flatMap((m) => m.routes);

/**
 * The api_extensions GET /1.0 advertises: each route module adds exactly the ones it implements in
 * full, since the `lxc` client and pylxd take a listed extension as a promise (API-NOTES.md).
 */
export const extensions: string[] = modules.flatMap((m) => m.extensions);

/**
 * What LXD's daemon does on its own timers and a daemonless tslxc does only while `tslxc serve`
 * runs: expired snapshots deleted, ephemeral instances that stopped by themselves deleted. The
 * server runs this at start and every HOUSEKEEPING_MS.
 */
export async function housekeeping(ctx: Context): Promise<void> {
  await snapshots.pruneExpired(ctx);
  await instances.sweepStopped(ctx);
}

/**
 * When a server that retired while idle (lib/api/front.ts) should run housekeeping again: at its
 * next period while a snapshot has an expiry or an instance is ephemeral, else each hour (the CLI
 * may have made one meanwhile).
 */
export async function housekeepingWakeMs(ctx: Context): Promise<number> {
  const due = snapshots.hasExpiringSnapshots(ctx) || (await instances.ephemeralInstances(ctx)).length > 0;
  return due ? HOUSEKEEPING_MS : 60 * HOUSEKEEPING_MS;
}

/** What the server does once, after it started: exports of built images made ahead of their first ask. */
export async function atStart(ctx: Context): Promise<void> {
  await images.keepMissingExports(ctx);
}

/** A minute, as LXD's tasks; TSLXC_API_HOUSEKEEPING_MS shortens it (tests). */
export const HOUSEKEEPING_MS = Number(process.env.TSLXC_API_HOUSEKEEPING_MS) > 0 ? Number(process.env.TSLXC_API_HOUSEKEEPING_MS) : 60_000;
