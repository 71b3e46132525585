import type { Context } from '../instance/context.js';
import type { InstanceConfig } from '../instance/config.js';
import type { Expanded } from '../profile/expand.js';

/**
 * The seam between the container lifecycle and networking. start() calls prepareNetwork before
 * booting: it returns the hook files the monitor runs (native/README.md: the start-host hook moves
 * each nic's container end into the new network namespace; the post-stop hook removes host ends)
 * and an undo for a start that fails. stop/delete call releaseNetwork. list/info call addresses().
 *
 * Not implemented yet: nic devices are ignored, so containers have only lo.
 */
export interface NetworkPlan {
  startHostHook?: string;
  postStopHook?: string;
  undo(): Promise<void>;
}

export async function prepareNetwork(_ctx: Context, _cfg: InstanceConfig, _expanded: Expanded): Promise<NetworkPlan> {
  return { undo: async () => {} };
}

/** After a container stopped for good (or was found dead): remove whatever its nics left on the host. */
export async function releaseNetwork(_ctx: Context, _name: string): Promise<void> {}

/** When a container is deleted: forget its leases and reservations too. */
export async function forgetNetwork(_ctx: Context, _name: string): Promise<void> {}

/** The container's IPv4 addresses (for list/info/wait --ip). */
export async function addresses(_ctx: Context, _name: string): Promise<string[]> {
  return [];
}
