/**
 * Reading `tslxc list --format json` and `tslxc info NAME --format json`: LXD's InstanceFull
 * objects (lib/api/shapes/instance.ts), as `lxc list --format json` prints them.
 */
export interface Listed {
  name: string;
  /** Running, Stopped, Frozen or Error (never started is Stopped, with last_used_at at LXD's zero time) */
  status: string;
  last_used_at: string;
  state: {
    pid: number;
    network: Record<string, { addresses: Array<{ family: string; address: string; scope: string }> }> | null;
  };
}

/** The IPv4 addresses of its nics (global scope: not the loopback's). */
export function ipv4Of(c: Listed | undefined): string[] {
  return Object.values(c?.state?.network ?? {}).flatMap((n) => n.addresses.filter((a) => a.family === 'inet' && a.scope === 'global').map((a) => a.address));
}

/** Whether it has never been started (tslxc's "Created"). */
export const neverStarted = (c: Listed | undefined) => c?.status === 'Stopped' && c.last_used_at.startsWith('1970-');

/** "Created" for a container never started, as tslxc's own table shows it; its status otherwise. */
export const tslxcStatus = (c: Listed | undefined) => (c === undefined ? undefined : neverStarted(c) ? 'Created' : c.status);
