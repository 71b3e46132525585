import type { Context } from '../instance/context.js';
import { networkHandler } from './network.js';
import type { DeviceHandler } from './types.js';

/**
 * The handlers with something to do when a container ends (`stopping`, `stop`), listed apart from
 * the registry so that `tslxc stop` loads only them: the registry brings every module's key
 * checks and the storage drivers, which a stop does not need (they made the stop path's module
 * loading a third slower). A test checks that every handler of the registry with a stop hook is here.
 */
export const CLEANUP_HANDLERS: readonly DeviceHandler[] = [networkHandler];

/** A stop is about to end the container whose monitor is `monitorPid`; the caller cleans up after. */
export function devicesStopping(ctx: Context, name: string, monitorPid: number): void {
  for (const h of CLEANUP_HANDLERS) h.stopping?.(ctx, name, monitorPid);
}

/** After the container ended for good (or was found dead): what its devices left on the host. */
export async function releaseDevices(ctx: Context, name: string): Promise<void> {
  for (const h of CLEANUP_HANDLERS) await h.stop?.(ctx, name);
}
