/** The parts of LXD's instance objects the pages read. */
export interface InstanceState {
  status: string;
  status_code: number;
  pid?: number;
  cpu?: { usage: number };
  memory?: { usage: number; usage_peak?: number };
  network?: Record<string, { addresses: Array<{ family: string; address: string; scope: string }> }> | null;
}

export interface Instance {
  name: string;
  status: string;
  status_code: number;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  expanded_config?: Record<string, string>;
  expanded_devices?: Record<string, Record<string, string>>;
  profiles: string[];
  created_at: string;
  last_used_at: string;
  state?: InstanceState | null;
}

export function ipv4(state: InstanceState | null | undefined): string[] {
  const out: string[] = [];
  for (const [nic, n] of Object.entries(state?.network ?? {})) {
    if (nic === 'lo') continue;
    for (const a of n.addresses ?? []) if (a.family === 'inet' && a.scope === 'global') out.push(a.address);
  }
  return out;
}

export function imageOf(i: Instance): string {
  const c = i.expanded_config ?? i.config;
  return c['image.description'] || [c['image.os'], c['image.release']].filter(Boolean).join(' ') || (c['volatile.base_image'] ?? '').slice(0, 12) || '-';
}

/** The state an event's action leaves an instance in, before its state is read again. */
export const STATUS_OF_ACTION: Record<string, string> = {
  'instance-started': 'Running',
  'instance-restarted': 'Running',
  'instance-stopped': 'Stopped',
  'instance-shutdown': 'Stopped',
  'instance-paused': 'Frozen',
  'instance-resumed': 'Running',
};
