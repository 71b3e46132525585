import type { Route } from '../types.js';
import * as consoleLog from './console.js';
import * as exec from './exec.js';
import * as files from './files.js';
import * as images from './images.js';
import * as instances from './instances.js';
import * as networks from './networks.js';
import * as profiles from './profiles.js';
import * as snapshots from './snapshots.js';
import * as storage from './storage.js';

const modules = [instances, snapshots, exec, consoleLog, files, images, profiles, networks, storage];

/** Every route of the API; each module under routes/ adds its list here. */
export const routes: Route[] = modules.flatMap((m) => m.routes);

/**
 * The api_extensions GET /1.0 advertises: each route module adds exactly the ones it implements in
 * full, since the `lxc` client and pylxd take a listed extension as a promise (API-NOTES.md).
 */
export const extensions: string[] = modules.flatMap((m) => m.extensions);
