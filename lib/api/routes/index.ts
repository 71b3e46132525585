import type { Route } from '../types.js';

/** Every route of the API; each module under routes/ adds its list here. */
export const routes: Route[] = [];
