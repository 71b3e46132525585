import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { applyNetworkLive } from '../network/instance.js';
import { isNetworkDevice } from '../network/devices.js';
import { diffDevices, isEmptyDiff, type DeviceDiff } from '../profile/expand.js';
import type { Device } from '../profile/store.js';
import { containerRunDir, type Paths } from '../state/paths.js';
import { diskBindSpec, disksFileText, isRootDisk } from '../storage/disk.js';
import { applyRootSizeLive } from '../storage/instance.js';
import { activateVolumePools } from '../storage/volume.js';
import { writeFileAtomic } from '../util/fs.js';
import { Reverter } from '../util/revert.js';
import type { InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { helperError, runHelper } from '../state/helper.js';
import { liveness } from '../state/runtime.js';
import { parseIdmapJson, type IdMap } from '../config/idmap.js';
import { VOLATILE_CURRENT } from './idmap.js';
import { isUnixDevice, nodeSpec, readAppliedNodes, resolveUnixDevice, unixDeviceRules, writeNodes, type UnixNode } from './unixdev.js';

/**
 * Device changes on a running container (hotplug), as LXD applies them: disks are mounted into or
 * out of its mount namespace by the helper's `disk` mode, nics get or lose their veth, proxies
 * their nft rules, a root disk size its qgroup, unix-char/unix-block devices their node (the
 * helper's `unixdev` mode) and their device cgroup rule. The devices in force are recorded in the
 * run dir (devices.json, written at start and after every change; nodes.json for the nodes as
 * made), so the change applied is always the difference between what the container has and what
 * its config now says.
 */

/** The expanded devices the running container was given: at start, then after each live change. */
export const appliedDevicesFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'devices.json');
/** What the monitor binds at each boot (--disks-file): rewritten with each live disk change, so a reboot inside keeps it. */
export const disksFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'disks');

export function recordAppliedDevices(p: Paths, name: string, devices: Record<string, Device>): void {
  writeFileAtomic(appliedDevicesFile(p, name), `${JSON.stringify(devices, null, 1)}\n`, 0o600);
}

export function readAppliedDevices(p: Paths, name: string): Record<string, Device> | undefined {
  try {
    return JSON.parse(fs.readFileSync(appliedDevicesFile(p, name), 'utf8')) as Record<string, Device>;
  } catch {
    return undefined;
  }
}

export function writeDisksFile(p: Paths, name: string, devices: Record<string, Device>, idmap: boolean): void {
  writeFileAtomic(disksFile(p, name), disksFileText(devices, p, { idmap }), 0o600);
}

/** Whether PID runs in a user namespace other than ours (an unprivileged container). */
function inOtherUserns(pid: number): boolean {
  return fs.readlinkSync(`/proc/${pid}/ns/user`) !== fs.readlinkSync('/proc/self/ns/user');
}

export interface LiveChange {
  /** what was applied, for the user */
  applied: string[];
  /** puts the container's devices back as they were (a later step of the caller failed) */
  undo(): Promise<void>;
}

const none: LiveChange = { applied: [], undo: async () => {} };

const isLiveDisk = (d: Device) => d.type === 'disk' && !isRootDisk(d);
/** Refuses, before anything is done, what cannot change on a running container. */
function checkLiveChange(name: string, diff: DeviceDiff): void {
  for (const [dev, c] of diff.changed) {
    if (isRootDisk(c.before) !== isRootDisk(c.after)) {
      throw new TslxcError(`Cannot change device "${dev}" of running container "${name}"`, 'a device cannot become or stop being the root disk while it runs', `stop it first: "tslxc stop ${name}"`);
    }
    if (isRootDisk(c.after) && (c.before.pool ?? '') !== (c.after.pool ?? '')) {
      throw new TslxcError(`Cannot change the root disk of running container "${name}"`, 'its pool cannot change (a container moves with "tslxc move NAME -s POOL")', `stop it first: "tslxc stop ${name}"`);
    }
  }
}

async function disk(name: string, args: string[], what: string): Promise<void> {
  const r = await runHelper(['disk', ...args]);
  if (r.code !== 0) throw new TslxcError(`${what} of running container "${name}"`, helperError(r.stderr));
}

async function unixdev(name: string, args: string[], what: string): Promise<void> {
  const r = await runHelper(['unixdev', ...args]);
  if (r.code !== 0) throw new TslxcError(`${what} of running container "${name}"`, helperError(r.stderr));
}

/** The id map the running container was started with (undefined: privileged). */
function runningIdmap(cfg: InstanceConfig, userns: boolean): IdMap | undefined {
  if (!userns) return undefined;
  const map = parseIdmapJson(cfg.config?.[VOLATILE_CURRENT]);
  if (!map) throw new TslxcError(`Cannot change the devices of running container "${cfg.name}"`, `its id map (${VOLATILE_CURRENT}) is not recorded`, `restart it: "tslxc restart ${cfg.name}"`);
  return map;
}

/**
 * Applies to the running container `name` the difference between the devices it has (recorded
 * at its start, or `fallback`) and `to`, its new expanded set. New volatile keys (a new nic's
 * hwaddr and address) are written into cfg.config; the caller saves cfg. On failure everything
 * this call did is undone and the error (one line) is thrown. A container that is not running
 * (no live init) gets nothing: its next start applies the config.
 */
export async function applyDevicesLive(ctx: Context, cfg: InstanceConfig, fallback: Record<string, Device>, to: Record<string, Device>): Promise<LiveChange> {
  const p = ctx.paths;
  const name = cfg.name;
  const live = liveness(p, name);
  if (!live.initAlive || !live.files.init) return none;
  const initPid = live.files.init.pid;
  const from = readAppliedDevices(p, name) ?? fallback;
  const diff = diffDevices(from, to);
  if (isEmptyDiff(diff)) return none;
  checkLiveChange(name, diff);
  const idmap = inOtherUserns(initPid);

  // unix devices are resolved before anything is done: a required host node that is missing
  // (or a key that cannot be) fails the whole change with nothing applied.
  const fromNodes = readAppliedNodes(p, name);
  const toNodes: Record<string, UnixNode> = { ...fromNodes };
  const nodeGone: Array<[string, UnixNode]> = [];
  const nodeComing: Array<[string, UnixNode]> = [];
  const skipped: string[] = [];
  for (const [dev, d] of [...diff.removed, ...diff.changed.map(([n, c]) => [n, c.before] as [string, Device])]) {
    if (isUnixDevice(d) && fromNodes[dev]) {
      nodeGone.push([dev, fromNodes[dev]]);
      delete toNodes[dev];
    }
  }
  for (const [dev, d] of [...diff.changed.map(([n, c]) => [n, c.after] as [string, Device]), ...diff.added]) {
    if (!isUnixDevice(d)) continue;
    const node = resolveUnixDevice(dev, d);
    if (!node) {
      // required=false and its host node is missing: skipped, as at a start.
      skipped.push(`skipped ${d.type} ${dev} (no ${d.source ?? d.path} on the host)`);
      continue;
    }
    nodeComing.push([dev, node]);
    toNodes[dev] = node;
  }
  const nodeMap = nodeGone.length || nodeComing.length ? runningIdmap(cfg, idmap) : undefined;
  const specs = nodeComing.map(([dev, n]) => [dev, nodeSpec(dev, n, nodeMap)] as const);

  const revert = new Reverter();
  const applied: string[] = [];
  try {
    const gone: Array<[string, Device]> = [...diff.removed, ...diff.changed.map(([n, c]) => [n, c.before] as [string, Device])];
    const coming: Array<[string, Device]> = [...diff.changed.map(([n, c]) => [n, c.after] as [string, Device]), ...diff.added];

    // Disks: the old mounts go first (a changed disk is unmounted, then mounted anew).
    for (const [dev, d] of gone.filter(([, d]) => isLiveDisk(d))) {
      await disk(name, ['--pid', String(initPid), '--remove', path.posix.normalize(d.path)], `Cannot remove disk "${dev}"`);
      revert.add(() => disk(name, ['--pid', String(initPid), '--add', diskBindSpec(dev, d, p, { idmap })], 'restore'));
      applied.push(`removed disk ${dev}`);
    }
    const newDisks = coming.filter(([, d]) => isLiveDisk(d));
    if (newDisks.length) await activateVolumePools(ctx, Object.fromEntries(newDisks));
    for (const [dev, d] of newDisks) {
      await disk(name, ['--pid', String(initPid), '--add', diskBindSpec(dev, d, p, { idmap })], `Cannot add disk "${dev}"`);
      revert.add(() => disk(name, ['--pid', String(initPid), '--remove', path.posix.normalize(d.path)], 'undo'));
      applied.push(`added disk ${dev}`);
    }

    const rootChanged = diff.changed.some(([, c]) => isRootDisk(c.after)) || [...diff.added, ...diff.removed].some(([, d]) => isRootDisk(d));
    if (rootChanged) {
      await applyRootSizeLive(ctx, name, to);
      revert.add(() => applyRootSizeLive(ctx, name, from));
      applied.push('root disk size');
    }

    if ([...gone, ...coming].some(([, d]) => isNetworkDevice(d))) {
      const undoNet = await applyNetworkLive(ctx, cfg, to, initPid);
      revert.add(undoNet);
      applied.push('network');
    }

    // unix devices: old nodes go, the device list follows the change, new nodes come.
    const pidArgs = ['--pid', String(initPid)];
    for (const [dev, n] of nodeGone) {
      await unixdev(name, [...pidArgs, '--remove', n.path], `Cannot remove ${n.type === 'c' ? 'unix-char' : 'unix-block'} device "${dev}"`);
      revert.add(() => unixdev(name, [...pidArgs, '--add', nodeSpec(dev, n, nodeMap)], 'restore'));
      applied.push(`removed ${n.type === 'c' ? 'unix-char' : 'unix-block'} ${dev}`);
    }
    if (nodeGone.length || nodeComing.length) {
      const cg = await ctx.cgroups();
      const before = unixDeviceRules(fromNodes);
      const after = unixDeviceRules(toNodes);
      try {
        await ctx.withDevicesLock(() => cg.changeDevices(name, before, after));
      } catch (err) {
        throw new TslxcError(`Cannot change the device list of running container "${name}"`, (err as Error).message);
      }
      revert.add(() => ctx.withDevicesLock(() => cg.changeDevices(name, after, before)));
    }
    for (const [dev, spec] of specs) {
      const n = toNodes[dev];
      await unixdev(name, [...pidArgs, '--add', spec], `Cannot add ${n.type === 'c' ? 'unix-char' : 'unix-block'} device "${dev}"`);
      revert.add(() => unixdev(name, [...pidArgs, '--remove', n.path], 'undo'));
      applied.push(`added ${n.type === 'c' ? 'unix-char' : 'unix-block'} ${dev}`);
    }
    if (nodeGone.length || nodeComing.length) {
      writeNodes(p, name, toNodes, nodeMap);
      revert.add(() => writeNodes(p, name, fromNodes, nodeMap));
    }

    if (gone.some(([, d]) => isLiveDisk(d)) || newDisks.length) {
      writeDisksFile(p, name, to, idmap);
      revert.add(() => writeDisksFile(p, name, from, idmap));
    }
    recordAppliedDevices(p, name, to);
    revert.add(() => recordAppliedDevices(p, name, from));
    applied.push(...skipped);
  } catch (err) {
    await revert.revert();
    throw err;
  }
  return { applied, undo: () => revert.revert() };
}
