import type { Throttle } from '../../gateway/throttle.js';
import type { Context } from '../../state/context.js';
import type { ServerCertificate } from '../certificate.js';
import type { Events } from '../events.js';
import type { Operations } from '../operations.js';

/** What the server's own routes share with it. */
export interface ServerCore {
  ctx: Context;
  operations: Operations;
  events: Events;
  certificate: ServerCertificate;
  /** the HTTPS addresses, for GET /1.0 and trust tokens */
  addresses: string[];
  extensions: string[];
  throttle: Throttle;
}
