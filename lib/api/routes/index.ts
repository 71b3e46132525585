import type { Route } from '../types.js';
import * as images from './images.js';
import * as instances from './instances.js';
import * as networks from './networks.js';
import * as profiles from './profiles.js';
import * as snapshots from './snapshots.js';
import * as storage from './storage.js';

/** Every route of the API; each module under routes/ adds its list here. */
export const routes: Route[] = [...instances.routes, ...snapshots.routes, ...images.routes, ...profiles.routes, ...networks.routes, ...storage.routes];

/**
 * The api_extensions GET /1.0 advertises: each route module adds exactly the ones it implements in
 * full, since the `lxc` client and pylxd take a listed extension as a promise (API-NOTES.md).
 */
export const extensions: string[] = [
  ...instances.extensions,
  ...snapshots.extensions,
  ...images.extensions,
  ...profiles.extensions,
  ...networks.extensions,
  ...storage.extensions,
];
