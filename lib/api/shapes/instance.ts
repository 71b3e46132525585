import fs from 'node:fs';
import path from 'node:path';
import { containerDir } from '../../state/paths.js';
import { etagOf } from '../etag.js';
import type { InstanceConfig } from '../../state/config.js';
import type { Context } from '../../state/context.js';
import { listInstances, readInstanceEntry, rootDiskUsage, type InstanceState as LibState, type InstanceStatus } from '../../instance/status.js';
import { snapshotsOf, snapshotDir, type SnapshotInfo } from '../../instance/snapshot.js';
import { readYamlIfExists } from '../../util/yaml.js';
import { loadProfile, type Profile } from '../../profile/store.js';
import { expandInstance } from '../../profile/expand.js';
import type { CgroupUsage } from '../../cgroup/types.js';
import { nicStatuses, type NicStatus } from '../../network/instance.js';
import { cgroupsOf } from '../../cgroup/context.js';

/**
 * LXD 5.0's instance objects (shared/api/instance*.go), built from tslxc's own state. The API and
 * the CLI's `list`/`info --format json` print these, so a jq line written for LXD works on both.
 * Field order is Go's (embedded structs first), map keys are sorted as Go's encoder sorts them.
 */

export type LxdStatus = 'Running' | 'Stopped' | 'Frozen' | 'Error';

/** api.StatusCode of each status an instance can have. */
export const STATUS_CODES: Record<LxdStatus, number> = { Running: 103, Stopped: 102, Frozen: 110, Error: 112 };

/** A map Go's encoder leaves out when empty (`json:",omitempty"`). */
function omitEmpty<K extends string, V extends object>(key: K, value: V): Partial<Record<K, V>> {
  return Object.keys(value).length ? ({ [key]: value } as Record<K, V>) : {};
}

/** LXD's zero time (Go's time.Time{}): an instance never started, a snapshot that never expires. */
export const ZERO_TIME = '1970-01-01T00:00:00Z';
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

type Devices = Record<string, Record<string, string>>;

export interface Instance {
  architecture: string;
  config: Record<string, string>;
  devices: Devices;
  ephemeral: boolean;
  profiles: string[];
  stateful: boolean;
  description: string;
  created_at: string;
  /** omitted when empty (Go's omitempty), as LXD does */
  expanded_config?: Record<string, string>;
  expanded_devices?: Devices;
  name: string;
  status: LxdStatus;
  status_code: number;
  last_used_at: string;
  location: string;
  type: 'container';
  project: string;
}

export interface InstanceStateNetwork {
  addresses: Array<{ family: string; address: string; netmask: string; scope: string }>;
  counters: {
    bytes_received: number;
    bytes_sent: number;
    packets_received: number;
    packets_sent: number;
    errors_received: number;
    errors_sent: number;
    packets_dropped_outbound: number;
    packets_dropped_inbound: number;
  };
  hwaddr: string;
  host_name: string;
  mtu: number;
  state: string;
  type: string;
}

export interface InstanceStateShape {
  status: LxdStatus;
  status_code: number;
  disk: Record<string, { usage: number }>;
  memory: { usage: number; usage_peak: number; swap_usage: number; swap_usage_peak: number };
  network: Record<string, InstanceStateNetwork> | null;
  pid: number;
  processes: number;
  cpu: { usage: number };
}

export interface InstanceSnapshot {
  expires_at: string;
  architecture: string;
  config: Record<string, string>;
  created_at: string;
  devices: Devices;
  ephemeral: boolean;
  /** omitted when empty (Go's omitempty), as LXD does */
  expanded_config?: Record<string, string>;
  expanded_devices?: Devices;
  last_used_at: string;
  name: string;
  profiles: string[];
  stateful: boolean;
  size: number;
}

/** Backups and snapshots are null when there are none, as LXD's Go leaves empty lists. */
export interface InstanceFull extends Instance {
  backups: null;
  state: InstanceStateShape;
  snapshots: InstanceSnapshot[] | null;
}

/** tslxc's statuses in LXD's four: never started and being created are Stopped, as LXD shows them. */
export function lxdStatus(s: InstanceStatus): LxdStatus {
  return s === 'Running' || s === 'Frozen' || s === 'Error' ? s : 'Stopped';
}

const ARCHITECTURES: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  arm: 'armv7l',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  ia32: 'i686',
};
/** The kernel's name for the host's architecture (containers run the host's). */
export const architecture = ARCHITECTURES[process.arch] ?? process.arch;

function sorted<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

function sortedDevices(d: Devices): Devices {
  const out: Devices = {};
  for (const k of Object.keys(d).sort()) out[k] = sorted(Object.fromEntries(Object.entries(d[k]).map(([kk, v]) => [kk, String(v)])));
  return out;
}

/**
 * The keys LXD keeps in an instance's config that tslxc keeps elsewhere: the image's properties
 * (image.*), the image's fingerprint and the last power state (volatile.*). Read-only here: a PUT
 * that sends them back unchanged changes nothing (lib/api/routes/instances.ts).
 */
export function derivedConfig(cfg: InstanceConfig, running?: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const img = cfg.image ?? ({} as InstanceConfig['image']);
  // LXD keeps no alias (its image.* are the image's properties): tslxc's own, so a client's list
  // shows the name the container was made from, as the local list does.
  if (img.alias) out['image.alias'] = String(img.alias);
  if (img.description !== undefined) out['image.description'] = String(img.description);
  if (img.os !== undefined) out['image.os'] = String(img.os);
  if (img.release !== undefined) out['image.release'] = String(img.release);
  if (img.fingerprint) out['volatile.base_image'] = img.fingerprint;
  if (running !== undefined) out['volatile.last_state.power'] = running ? 'RUNNING' : 'STOPPED';
  return out;
}

/** A container's own config as LXD shows it: its keys (all strings) and the derived ones. */
export function localConfig(cfg: InstanceConfig, running?: boolean): Record<string, string> {
  const own = Object.fromEntries(Object.entries(cfg.config ?? {}).map(([k, v]) => [k, String(v)]));
  return sorted({ ...derivedConfig(cfg, running), ...own });
}

/** Loads each profile once per listing: a list of 100 containers on one profile parses it once. */
export type ProfileLoader = (name: string) => Profile;

export function profileLoader(ctx: Context): ProfileLoader {
  const cache = new Map<string, Profile>();
  return (name) => {
    let p = cache.get(name);
    if (!p) cache.set(name, (p = loadProfile(ctx.paths, name)));
    return p;
  };
}

/** The config and devices its profiles give it; a profile gone missing leaves its own keys only. */
function expand(ctx: Context, cfg: InstanceConfig, load: ProfileLoader): { config: Record<string, string>; devices: Devices } {
  try {
    return expandInstance(ctx.paths, cfg, load);
  } catch {
    return { config: cfg.config ?? {}, devices: cfg.devices ?? {} };
  }
}

/** When the container last started (the file a start touches); LXD's zero time if it never did. */
function lastUsedAt(ctx: Context, cfg: InstanceConfig): string {
  if (cfg.status === 'created' || cfg.status === 'creating') return ZERO_TIME;
  const st = fs.statSync(path.join(containerDir(ctx.paths, cfg.name), 'last-used'), { throwIfNoEntry: false });
  // A first start killed before it noted the time still ran: never LXD's zero time then.
  return st ? st.mtime.toISOString() : cfg.last_used_at || cfg.created_at || ZERO_TIME;
}

export function instanceShape(ctx: Context, cfg: InstanceConfig | undefined, state: LibState, load: ProfileLoader = profileLoader(ctx)): Instance {
  const status = lxdStatus(state.status);
  const running = status === 'Running' || status === 'Frozen';
  if (!cfg) {
    return {
      architecture,
      config: {},
      devices: {},
      ephemeral: false,
      profiles: [],
      stateful: false,
      description: '',
      created_at: ZERO_TIME,
      name: state.name,
      status,
      status_code: STATUS_CODES[status],
      last_used_at: ZERO_TIME,
      location: 'none',
      type: 'container',
      project: 'default',
    };
  }
  const expanded = expand(ctx, cfg, load);
  const config = localConfig(cfg, running);
  return {
    architecture,
    config,
    devices: sortedDevices(cfg.devices ?? {}),
    ephemeral: cfg.ephemeral === true,
    profiles: [...(cfg.profiles ?? [])],
    stateful: false,
    description: cfg.description ?? '',
    created_at: cfg.created_at || ZERO_TIME,
    ...omitEmpty('expanded_config', sorted({ ...expanded.config, ...config })),
    ...omitEmpty('expanded_devices', sortedDevices(expanded.devices)),
    name: cfg.name,
    status,
    status_code: STATUS_CODES[status],
    last_used_at: lastUsedAt(ctx, cfg),
    location: 'none',
    type: 'container',
    project: 'default',
  };
}

/**
 * The ETag of an instance: a hash of what a PUT replaces (LXD hashes the same fields), so a client
 * that read it before another change gets 412 on its write.
 */
export function instanceEtag(i: Pick<Instance, 'architecture' | 'config' | 'devices' | 'ephemeral' | 'profiles' | 'description'>): string {
  // volatile.last_state.power changes with a start, which is no edit of the config.
  const config = Object.fromEntries(Object.entries(i.config).filter(([k]) => k !== 'volatile.last_state.power'));
  return etagOf([i.architecture, config, i.devices, i.ephemeral, i.profiles, i.description]);
}

const ZERO_COUNTERS: InstanceStateNetwork['counters'] = {
  bytes_received: 0,
  bytes_sent: 0,
  packets_received: 0,
  packets_sent: 0,
  errors_received: 0,
  errors_sent: 0,
  packets_dropped_outbound: 0,
  packets_dropped_inbound: 0,
};

/** The host end's counters, turned around: what the host sends on a veth, the container receives. */
function counters(hostIf: string): InstanceStateNetwork['counters'] {
  const dir = `/sys/class/net/${hostIf}/statistics`;
  const read = (f: string) => {
    try {
      return Number(fs.readFileSync(path.join(dir, f), 'utf8')) || 0;
    } catch {
      return 0;
    }
  };
  if (!fs.existsSync(dir)) return { ...ZERO_COUNTERS };
  return {
    bytes_received: read('tx_bytes'),
    bytes_sent: read('rx_bytes'),
    packets_received: read('tx_packets'),
    packets_sent: read('rx_packets'),
    errors_received: read('tx_errors'),
    errors_sent: read('rx_errors'),
    packets_dropped_outbound: read('rx_dropped'),
    packets_dropped_inbound: read('tx_dropped'),
  };
}

/** The loopback every container has; LXD lists it too. */
const LOOPBACK: InstanceStateNetwork = {
  addresses: [
    { family: 'inet', address: '127.0.0.1', netmask: '8', scope: 'local' },
    { family: 'inet6', address: '::1', netmask: '128', scope: 'local' },
  ],
  counters: ZERO_COUNTERS,
  hwaddr: '',
  host_name: '',
  mtu: 65536,
  state: 'up',
  type: 'loopback',
};

export function networkShape(nics: NicStatus[]): Record<string, InstanceStateNetwork> {
  const out: Record<string, InstanceStateNetwork> = {};
  for (const n of nics) {
    out[n.name] = {
      addresses: n.ipv4 ? [{ family: 'inet', address: n.ipv4, netmask: String(n.prefix ?? 32), scope: 'global' }] : [],
      counters: counters(n.host),
      hwaddr: n.hwaddr,
      host_name: n.host,
      mtu: n.mtu,
      state: 'up',
      type: 'broadcast',
    };
  }
  out.lo = structuredClone(LOOPBACK);
  return sorted(out);
}

export interface StateInputs {
  usage?: CgroupUsage;
  nics?: NicStatus[];
  /** bytes used by the root, when the caller paid for the walk (one instance, not a list) */
  diskBytes?: number;
}

/** LXD's InstanceState: usage and network only while it runs (LXD's renderState). */
export function stateShape(state: LibState, inputs: StateInputs = {}): InstanceStateShape {
  const status = lxdStatus(state.status);
  const running = status === 'Running' || status === 'Frozen';
  const u = running ? (inputs.usage ?? {}) : {};
  return {
    status,
    status_code: STATUS_CODES[status],
    disk: inputs.diskBytes === undefined ? {} : { root: { usage: inputs.diskBytes } },
    memory: { usage: u.memoryBytes ?? 0, usage_peak: u.memoryPeakBytes ?? 0, swap_usage: u.swapBytes ?? 0, swap_usage_peak: 0 },
    network: running ? networkShape(inputs.nics ?? []) : null,
    pid: running ? (state.initPid ?? 0) : 0,
    processes: running ? (u.processes ?? 0) : 0,
    cpu: { usage: u.cpuTimeNs ?? 0 },
  };
}

/** A snapshot as LXD shows it: the container's config at the time, with its derived keys. */
export function snapshotShape(
  ctx: Context,
  info: SnapshotInfo & { expires_at?: string },
  cfg: InstanceConfig | undefined,
  load: ProfileLoader = profileLoader(ctx),
): InstanceSnapshot {
  const expanded = cfg ? expand(ctx, cfg, load) : { config: {}, devices: {} };
  const config = cfg ? localConfig(cfg) : {};
  return {
    expires_at: info.expires_at ?? GO_ZERO_TIME,
    architecture,
    config,
    created_at: info.created_at,
    devices: sortedDevices(cfg?.devices ?? {}),
    ephemeral: false,
    ...omitEmpty('expanded_config', sorted({ ...expanded.config, ...config })),
    ...omitEmpty('expanded_devices', sortedDevices(expanded.devices)),
    last_used_at: ZERO_TIME,
    name: info.name,
    profiles: [...(cfg?.profiles ?? [])],
    stateful: false,
    size: -1,
  };
}

export function fullShape(instance: Instance, state: InstanceStateShape, snapshots: InstanceSnapshot[]): InstanceFull {
  return { ...instance, backups: null, state, snapshots: snapshots.length ? snapshots : null };
}

/** What a running container's state needs beyond its status: cgroup figures and nics (no process entered). */
async function liveInputs(ctx: Context, state: LibState, opts: { disk?: boolean } = {}): Promise<StateInputs> {
  const inputs: StateInputs = {};
  if (state.status === 'Running' || state.status === 'Frozen') {
    inputs.usage = await (await cgroupsOf(ctx)).usage(state.name).catch(() => undefined);
    inputs.nics = nicStatuses(ctx, state.name);
  }
  if (opts.disk) inputs.diskBytes = rootDiskUsage(ctx, state.name);
  return inputs;
}

/** The snapshots of a container, oldest first, each with the config it saved. */
export function readSnapshots(ctx: Context, name: string, load: ProfileLoader = profileLoader(ctx)): InstanceSnapshot[] {
  return snapshotsOf(ctx, name).map((s) => readSnapshot(ctx, name, s, load));
}

export function readSnapshot(ctx: Context, name: string, info: SnapshotInfo, load: ProfileLoader = profileLoader(ctx)): InstanceSnapshot {
  let cfg: InstanceConfig | undefined;
  try {
    cfg = readYamlIfExists<InstanceConfig>(path.join(snapshotDir(ctx, name, info.name), 'config.yaml'));
  } catch {
    cfg = undefined;
  }
  return snapshotShape(ctx, info, cfg, load);
}

/**
 * Every container as LXD's GET /1.0/instances?recursion=1 (full: 2) shows it, in name order;
 * `visible` leaves out the ones a restricted caller may not see. A list reads no root (no disk
 * usage) and enters no container: `tslxc list --format json` prints this too.
 */
export async function readInstances(ctx: Context, opts: { full: true; visible?: (name: string) => boolean }): Promise<InstanceFull[]>;
export async function readInstances(ctx: Context, opts: { full: false; visible?: (name: string) => boolean }): Promise<Instance[]>;
export async function readInstances(ctx: Context, opts: { full: boolean; visible?: (name: string) => boolean }): Promise<Instance[] | InstanceFull[]> {
  const load = profileLoader(ctx);
  const out: Instance[] = [];
  for (const { state, config } of await listInstances(ctx)) {
    if (opts.visible && !opts.visible(state.name)) continue;
    const instance = instanceShape(ctx, config, state, load);
    if (!opts.full) {
      out.push(instance);
      continue;
    }
    const snaps = config ? readSnapshotsSafe(ctx, state.name, load) : [];
    out.push(fullShape(instance, stateShape(state, await liveInputs(ctx, state)), snaps));
  }
  return out;
}

function readSnapshotsSafe(ctx: Context, name: string, load: ProfileLoader): InstanceSnapshot[] {
  try {
    return readSnapshots(ctx, name, load);
  } catch {
    return [];
  }
}

/** One container (GET /1.0/instances/NAME, `tslxc info NAME --format json` with full). */
export async function readInstance(
  ctx: Context,
  name: string,
  opts: { full?: boolean; disk?: boolean } = {},
): Promise<{ instance: Instance | InstanceFull; etag: string }> {
  const { state, config: cfg } = await readInstanceEntry(ctx, name);
  const load = profileLoader(ctx);
  const instance = instanceShape(ctx, cfg, state, load);
  const etag = instanceEtag(instance);
  if (!opts.full) return { instance, etag };
  // One instance in full is what `info` shows: tslxc's facts LXD has no key for go with it.
  if (opts.disk && cfg) instance.config = sorted({ ...instance.config, ...(await ownFacts(ctx, cfg, state, instance.expanded_config ?? instance.config)) });
  return { instance: fullShape(instance, stateShape(state, await liveInputs(ctx, state, opts)), cfg ? readSnapshots(ctx, name, load) : []), etag };
}

/**
 * What `tslxc info` shows that LXD's instance object has no key for, as volatile.tslxc.* keys: a
 * remote client's info prints the lines the local one does, LXD's clients ignore volatile keys,
 * and a PUT drops them (read-only, as every volatile.* key). Not in the etag: the PID and lxcfs
 * change with a start, which is no edit of the config.
 */
async function ownFacts(ctx: Context, cfg: InstanceConfig, state: LibState, expanded: Record<string, string>): Promise<Record<string, string>> {
  const { lxcfsSummary } = await import('../../instance/lxcfs-summary.js');
  const out: Record<string, string> = {
    'volatile.tslxc.hostname': cfg.hostname,
    'volatile.tslxc.init': (cfg.init ?? []).join(' '),
    'volatile.tslxc.lxcfs': lxcfsSummary(ctx, expanded, state.initPid),
  };
  if (state.monitorPid) out['volatile.tslxc.monitor_pid'] = String(state.monitorPid);
  if (state.reason) out['volatile.tslxc.reason'] = state.reason;
  if (!state.initPid && state.lastExit) out['volatile.tslxc.last_exit'] = state.lastExit;
  return out;
}

/** GET /1.0/instances/NAME/state. */
export async function readState(ctx: Context, name: string, opts: { disk?: boolean } = {}): Promise<InstanceStateShape> {
  const { state } = await readInstanceEntry(ctx, name);
  return stateShape(state, await liveInputs(ctx, state, opts));
}
