import type { ServerCore } from './core.js';
import type { Route } from '../types.js';
import { CERTIFICATE_EXTENSIONS, certificateRoutes } from './certificates.js';
import { operationRoutes } from './operations.js';
import { serverRoutes } from './server-info.js';

/** The server's own routes: GET /1.0, operations, events, certificates. */
export function coreRoutes(core: ServerCore): Route[] {
  return [...serverRoutes(core), ...operationRoutes(core), ...certificateRoutes(core)];
}

/** The api_extensions these routes implement in full. */
export const CORE_EXTENSIONS = ['event_lifecycle', ...CERTIFICATE_EXTENSIONS];
