import fs from 'node:fs';
import path from 'node:path';
import { containerDir, locksDir, type Paths } from '../state/paths.js';
import { lockHeld } from '../util/lock.js';
import { startTimeToDate } from '../util/proc.js';
import { ConfigCache, listNames, loadConfig, type InstanceConfig } from '../state/config.js';
import { abandonedFreeze, sweepInstanceLocks, type Context } from '../state/context.js';
import { rootfsPath } from '../storage/instance.js';
import { liveness, type Liveness } from '../state/runtime.js';
import { addresses } from '../network/instance.js';
import { cgroupsOf } from '../cgroup/context.js';

export type InstanceStatus = 'Created' | 'Creating' | 'Running' | 'Frozen' | 'Stopped' | 'Error';

export interface InstanceState {
  name: string;
  status: InstanceStatus;
  /** why, when status is Error */
  reason?: string;
  initPid?: number;
  monitorPid?: number;
  startedAt?: string;
  /** IPv4 addresses of its nics (running containers) */
  ipv4: string[];
  image: string;
  hostname: string;
  createdAt: string;
  lastExit?: string;
}

/**
 * The truth about a container, from its live processes rather than from what the last command
 * wrote: a SIGKILLed monitor, CLI or init shows up here as it is.
 */
export async function instanceState(ctx: Context, cfg: InstanceConfig, live: Liveness = liveness(ctx.paths, cfg.name)): Promise<InstanceState> {
  const base = {
    name: cfg.name,
    ipv4: [] as string[],
    image: cfg.image.alias ?? cfg.image.fingerprint.slice(0, 12),
    hostname: cfg.hostname,
    createdAt: cfg.created_at,
    lastExit: live.files.exit,
  };
  if (cfg.status === 'creating') {
    return createInProgress(ctx.paths, cfg.name)
      ? { ...base, status: 'Creating' }
      : { ...base, status: 'Error', reason: `its creation was interrupted; "tslxc delete ${cfg.name}" removes it` };
  }
  if (live.initAlive) {
    const initPid = live.files.init!.pid;
    const startedAt = startTimeToDate(live.files.init!.startTime).toISOString();
    if (!live.monitorAlive) {
      return { ...base, status: 'Error', initPid, startedAt, reason: `its monitor died while it runs; "tslxc stop ${cfg.name}" stops it and cleans up` };
    }
    const frozen = (await (await cgroupsOf(ctx)).state(cfg.name).catch(() => 'thawed')) === 'frozen';
    const ipv4 = await addresses(ctx, cfg.name).catch(() => []);
    // A snapshot or copy killed while it held the container frozen: a read shows it as it is and
    // says why; the next operation that takes its lock thaws it (Context.withInstanceLock).
    const reason =
      frozen && abandonedFreeze(ctx.paths, cfg.name) ? `a snapshot or copy was killed while it held it frozen; "tslxc resume ${cfg.name}" thaws it` : undefined;
    return { ...base, ipv4, status: frozen ? 'Frozen' : 'Running', ...(reason && { reason }), initPid, monitorPid: live.files.monitor!.pid, startedAt };
  }
  if (live.monitorAlive) {
    // Between init's end and the monitor's cleanup, or between the two halves of a reboot.
    return { ...base, status: 'Running', monitorPid: live.files.monitor!.pid, reason: 'restarting' };
  }
  if (live.leftovers) {
    return { ...base, status: 'Error', reason: `its monitor was killed; "tslxc stop ${cfg.name}" or "tslxc start ${cfg.name}" cleans up` };
  }
  return { ...base, status: cfg.status === 'created' ? 'Created' : 'Stopped' };
}

function createInProgress(p: Paths, name: string): boolean {
  return lockHeld(locksDir(p), `ct-${name}`);
}

export async function listStates(ctx: Context): Promise<InstanceState[]> {
  return (await listInstances(ctx)).map((i) => i.state);
}

/** Every container's state with its config as committed (none when it cannot be read: Error). */
export async function listInstances(ctx: Context): Promise<Array<{ state: InstanceState; config?: InstanceConfig }>> {
  const out: Array<{ state: InstanceState; config?: InstanceConfig }> = [];
  const configs = new ConfigCache(ctx.paths);
  const names = listNames(ctx.paths);
  sweepInstanceLocks(ctx.paths);
  let moved = false;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    let cfg: InstanceConfig;
    try {
      cfg = configs.load(name);
    } catch {
      // Loading finished a rename a killed tslxc had committed: the container is under its new name.
      if (!fs.existsSync(containerDir(ctx.paths, name))) {
        for (const n of listNames(ctx.paths)) if (!names.includes(n)) names.push(n);
        moved = true;
        continue;
      }
      out.push({ state: configlessState(name) });
      continue;
    }
    out.push({ state: await instanceState(ctx, cfg), config: cfg });
  }
  configs.save(names);
  if (moved) out.sort((x, y) => (x.state.name < y.state.name ? -1 : x.state.name > y.state.name ? 1 : 0));
  return out;
}

/**
 * A container's dir without a readable config: a create killed before its config was written, or
 * a config lost since. It is listed, read and deleted as an Error, as one whose create was killed later.
 */
export function configlessState(name: string): InstanceState {
  return {
    name,
    status: 'Error',
    reason: `its config.yaml is missing or unreadable; "tslxc delete ${name}" removes it`,
    ipv4: [],
    image: '',
    hostname: '',
    createdAt: '',
  };
}

/** One container as the list shows it (listInstances): a dir without a readable config is an Error. */
export async function readInstanceEntry(ctx: Context, name: string): Promise<{ state: InstanceState; config?: InstanceConfig }> {
  let cfg: InstanceConfig;
  try {
    cfg = loadConfig(ctx.paths, name);
  } catch (err) {
    // A dir a committed rename has not moved yet is the container under its new name, not this one.
    if (!fs.existsSync(containerDir(ctx.paths, name)) || !listNames(ctx.paths).includes(name)) throw err;
    return { state: configlessState(name) };
  }
  return { state: await instanceState(ctx, cfg), config: cfg };
}

export interface InstanceInfo extends InstanceState {
  uptimeSeconds?: number;
  /** Absent for a dir without a readable config (configlessState): shown as list shows it. */
  config?: InstanceConfig;
  usage?: { memoryBytes?: number; memoryPeakBytes?: number; swapBytes?: number; cpuTimeNs?: number; processes?: number };
  diskBytes?: number;
}

export async function instanceInfo(ctx: Context, name: string): Promise<InstanceInfo> {
  const { state, config: cfg } = await readInstanceEntry(ctx, name);
  const info: InstanceInfo = { ...state, config: cfg };
  if (!cfg) return info;
  if (state.startedAt) info.uptimeSeconds = Math.max(0, Math.round((Date.now() - Date.parse(state.startedAt)) / 1000));
  if (state.status === 'Running' || state.status === 'Frozen') info.usage = await (await cgroupsOf(ctx)).usage(name).catch(() => undefined);
  info.diskBytes = rootDiskUsage(ctx, name);
  return info;
}

/** Bytes used by the container's root (du's answer): a walk of the tree, for one container's info, never a list. */
export function rootDiskUsage(ctx: Context, name: string): number | undefined {
  return diskUsage(rootfsPath(ctx, name));
}

/** Bytes used by a tree, counting each hard-linked inode once (du's answer). */
function diskUsage(root: string): number | undefined {
  const seen = new Set<string>();
  let total = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      const id = `${st.dev}:${st.ino}`;
      if (!seen.has(id)) {
        seen.add(id);
        total += st.blocks * 512;
      }
      if (e.isDirectory()) walk(p);
    }
  };
  if (!fs.existsSync(root)) return undefined;
  walk(root);
  return total;
}
