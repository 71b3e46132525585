import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { grantRule, type DeviceRule } from '../cgroup/devices.js';
import { toHost, type IdMap } from '../config/idmap.js';
import type { Device } from '../profile/store.js';
import { containerRunDir, type Paths } from '../state/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Reverter } from '../util/revert.js';
import { helperError, runHelper } from '../state/helper.js';
import type { RunFile } from '../state/spec.js';
import type { DeviceHandler, DeviceType, LiveInstance, Named } from './types.js';
import { cgroupsOf } from '../cgroup/context.js';

/**
 * unix-char and unix-block devices, as LXD has them: a device node at `path` inside the container
 * (default: `source`), owned by `uid`:`gid` (container ids, default 0) with `mode` (default 0660),
 * for the device `major`:`minor`, or the one the host's node at `source` (default: `path`) is;
 * `required=false` lets the container start without it when that host node is missing.
 *
 * The node is made by the helper (native/unixdev.c) on a private tmpfs of its own and bind-mounted
 * onto the path, resolved inside the container's root, for privileged and unprivileged containers
 * alike; the device cgroup gets one rule for it ("c MAJOR:MINOR rwm"), and only while it is there.
 */

const KEYS = ['type', 'source', 'path', 'major', 'minor', 'uid', 'gid', 'mode', 'required'];
const MAX_MAJOR = 4095; // the kernel's dev_t: 12 bits of major, 20 of minor
const MAX_MINOR = 1_048_575;
const MAX_ID = 4_294_967_294;
const BOOLS = ['true', 'false', '1', '0', 'yes', 'no'];

/** One device resolved for the helper: numbers known, ids still the container's. */
export interface UnixNode {
  type: 'c' | 'b';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
  path: string;
}

const kind = (dev: Device) => (dev.type === 'unix-block' ? 'block' : 'character');
/** The device type a resolved node came from, for messages. */
const kindName = (n: UnixNode) => (n.type === 'c' ? 'unix-char' : 'unix-block');

function bad(name: string, dev: Device, key: string, why: string, fix?: string): TslxcError {
  return new TslxcError(`Invalid ${dev.type} device "${name}", key "${key}"`, why, fix);
}

function integer(name: string, dev: Device, key: string, max: number): number | undefined {
  const v = dev[key];
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v.trim()) || Number(v) > max) throw bad(name, dev, key, `"${v.slice(0, 20)}" is not a whole number from 0 to ${max}`);
  return Number(v);
}

/** The mode: octal as LXD writes it ("0660", "660"), permission bits only. */
function parseMode(name: string, dev: Device): number {
  const v = dev.mode;
  if (v === undefined) return 0o660;
  if (!/^0?[0-7]{3}$/.test(v.trim())) throw bad(name, dev, 'mode', `"${v.slice(0, 20)}" is not an octal mode from 0000 to 0777`, 'e.g. mode=0660');
  return parseInt(v.trim(), 8);
}

function checkPath(name: string, dev: Device, key: 'path' | 'source'): void {
  const v = dev[key];
  if (v === undefined) return;
  const where = key === 'path' ? 'inside the container' : 'on the host';
  if (!v.startsWith('/') || v.split('/').includes('..') || path.posix.normalize(v) === '/' || v.includes(':') || v.includes('\n')) {
    throw bad(name, dev, key, `"${v.slice(0, 60)}" must be an absolute path ${where} other than /, without ".." or ":"`);
  }
}

/** The keys alone (config device add, profile edits): one line naming the device and the key. */
export function validateUnixDevice(name: string, dev: Device): void {
  for (const k of Object.keys(dev)) {
    if (!KEYS.includes(k)) throw bad(name, dev, k, 'unknown key', `${dev.type} devices take ${KEYS.slice(1).join(', ')}`);
  }
  checkPath(name, dev, 'path');
  checkPath(name, dev, 'source');
  const major = integer(name, dev, 'major', MAX_MAJOR);
  const minor = integer(name, dev, 'minor', MAX_MINOR);
  if ((major === undefined) !== (minor === undefined)) {
    const missing = major === undefined ? 'major' : 'minor';
    throw bad(name, dev, missing, `it is missing: major and minor are given together`, 'or give neither, and "source" names the host node');
  }
  if (dev.source === undefined && dev.path === undefined) {
    throw bad(name, dev, 'source', `neither "source" (a host ${kind(dev)} device) nor "path" (with major and minor) is given`, 'e.g. source=/dev/fuse');
  }
  integer(name, dev, 'uid', MAX_ID);
  integer(name, dev, 'gid', MAX_ID);
  parseMode(name, dev);
  if (dev.required !== undefined && !BOOLS.includes(dev.required)) throw bad(name, dev, 'required', `"${dev.required.slice(0, 20)}" is not true or false`);
}

const truthy = (v: string | undefined) => v === undefined || v === 'true' || v === '1' || v === 'yes';

/**
 * The node to make for a device, reading the host's node at `source` (default `path`) when the
 * numbers are not given. A missing host node: an error when the device is required (the default),
 * undefined (skip it) when not. The numbers are never read from a node that is not of the
 * device's kind: a unix-char device cannot be given a block device by mistake.
 */
export function resolveUnixDevice(name: string, dev: Device): UnixNode | undefined {
  validateUnixDevice(name, dev);
  const type = dev.type === 'unix-block' ? 'b' : 'c';
  const mode = parseMode(name, dev);
  const uid = Number(dev.uid ?? 0);
  const gid = Number(dev.gid ?? 0);
  const dst = path.posix.normalize(dev.path ?? dev.source!);
  if (dev.major !== undefined) return { type, major: Number(dev.major), minor: Number(dev.minor), mode, uid, gid, path: dst };
  const src = dev.source ?? dev.path!;
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch (err) {
    if (!truthy(dev.required)) return undefined;
    throw new TslxcError(
      `Cannot give ${dev.type} device "${name}" to the container`,
      `its source ${src} cannot be read on the host (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'fix "source", give major and minor, or set required=false to start without it',
    );
  }
  if (type === 'c' ? !st.isCharacterDevice() : !st.isBlockDevice()) {
    throw bad(
      name,
      dev,
      'source',
      `${src} is not a ${kind(dev)} device on the host`,
      dev.type === 'unix-char' ? 'a block device takes type unix-block' : 'a character device takes type unix-char',
    );
  }
  return { type, ...splitDev(st.rdev), mode, uid, gid, path: dst };
}

/** Linux's dev_t layout (glibc's major()/minor()). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return { major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)), minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)) };
}

/** The nodes the container gets for its unix devices: name → node (skipped ones left out), by name. */
export function planUnixDevices(devices: Named[]): Record<string, UnixNode> {
  const out: Record<string, UnixNode> = {};
  for (const [name, dev] of [...devices].sort(([a], [b]) => a.localeCompare(b))) {
    const node = resolveUnixDevice(name, dev);
    if (node) out[name] = node;
  }
  return out;
}

/** The device cgroup rules of granted nodes (one per distinct device). */
export function unixDeviceRules(nodes: Record<string, UnixNode>): DeviceRule[] {
  return Object.entries(nodes).map(([name, n]) => grantRule(n.type, n.major, n.minor, `${kindName(n)} device "${name}"`));
}

/**
 * The helper's node spec (c|b:MAJOR:MINOR:MODE:UID:GID:/PATH), owner in host ids: an unprivileged
 * container's ids go through its map (the node sits on a host tmpfs, seen through the user namespace).
 */
export function nodeSpec(name: string, n: UnixNode, idmap: IdMap | undefined): string {
  const uid = idmap ? toHost(idmap.uid, n.uid) : n.uid;
  const gid = idmap ? toHost(idmap.gid, n.gid) : n.gid;
  if (uid === undefined || gid === undefined) {
    throw new TslxcError(
      `Cannot give device "${name}" to the container`,
      `its owner ${n.uid}:${n.gid} is not mapped in the container's id map`,
      'give a uid and gid the container has (0 is root)',
    );
  }
  return `${n.type}:${n.major}:${n.minor}:${n.mode.toString(8).padStart(4, '0')}:${uid}:${gid}:${n.path}`;
}

/** What the monitor makes at every boot (--nodes-file): rewritten with each live change, so a reboot inside keeps it. */
export const nodesFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'nodes');
/** The nodes the running container was given, by device name: what a live removal takes away. */
export const appliedNodesFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'nodes.json');

export function writeNodes(p: Paths, name: string, nodes: Record<string, UnixNode>, idmap: IdMap | undefined): void {
  for (const f of nodesRunFiles(p, name, nodes, idmap)) writeFileAtomic(f.path, f.data, f.mode);
}

/** The nodes files as data: a start writes them through its spec. */
function nodesRunFiles(p: Paths, name: string, nodes: Record<string, UnixNode>, idmap: IdMap | undefined): RunFile[] {
  const text = Object.entries(nodes)
    .map(([dev, n]) => `${nodeSpec(dev, n, idmap)}\n`)
    .join('');
  return [
    { path: nodesFile(p, name), mode: 0o600, data: text },
    { path: appliedNodesFile(p, name), mode: 0o600, data: `${JSON.stringify(nodes, null, 1)}\n` },
  ];
}

export function readAppliedNodes(p: Paths, name: string): Record<string, UnixNode> {
  try {
    return JSON.parse(fs.readFileSync(appliedNodesFile(p, name), 'utf8')) as Record<string, UnixNode>;
  } catch {
    return {};
  }
}

async function unixdev(instance: string, args: string[], what: string): Promise<void> {
  const r = await runHelper(['unixdev', ...args]);
  if (r.code !== 0) throw new TslxcError(`${what} of running container "${instance}"`, helperError(r.stderr));
}

/**
 * A live change: the host nodes are resolved before anything is done (a required one that is
 * missing fails the whole change); then old nodes go, the device list follows, new nodes come.
 */
async function changeLive(t: LiveInstance, removed: Named[], added: Named[]) {
  const p = t.ctx.paths;
  const name = t.cfg.name;
  const fromNodes = readAppliedNodes(p, name);
  const toNodes: Record<string, UnixNode> = { ...fromNodes };
  const gone: Array<[string, UnixNode]> = [];
  const coming: Array<[string, UnixNode]> = [];
  const skipped: string[] = [];
  for (const [dev] of removed) {
    if (!fromNodes[dev]) continue;
    gone.push([dev, fromNodes[dev]]);
    delete toNodes[dev];
  }
  for (const [dev, d] of added) {
    const node = resolveUnixDevice(dev, d);
    if (!node) {
      // required=false and its host node is missing: skipped, as at a start.
      skipped.push(`skipped ${d.type} ${dev} (no ${d.source ?? d.path} on the host)`);
      continue;
    }
    coming.push([dev, node]);
    toNodes[dev] = node;
  }
  if (!gone.length && !coming.length) return { apply: async () => skipped };
  const idmap = t.idmap();
  const specs = coming.map(([dev, n]) => [dev, nodeSpec(dev, n, idmap)] as const);
  const pidArgs = ['--pid', String(t.pid)];
  return {
    async apply(revert: Reverter): Promise<string[]> {
      const applied: string[] = [];
      for (const [dev, n] of gone) {
        await unixdev(name, [...pidArgs, '--remove', n.path], `Cannot remove ${kindName(n)} device "${dev}"`);
        revert.add(() => unixdev(name, [...pidArgs, '--add', nodeSpec(dev, n, idmap)], 'restore'));
        applied.push(`removed ${kindName(n)} ${dev}`);
      }
      const cg = await cgroupsOf(t.ctx);
      const before = unixDeviceRules(fromNodes);
      const after = unixDeviceRules(toNodes);
      try {
        await t.ctx.withDevicesLock(() => cg.changeDevices(name, before, after));
      } catch (err) {
        throw new TslxcError(`Cannot change the device list of running container "${name}"`, (err as Error).message);
      }
      revert.add(() => t.ctx.withDevicesLock(() => cg.changeDevices(name, after, before)));
      for (const [dev, spec] of specs) {
        const n = toNodes[dev];
        await unixdev(name, [...pidArgs, '--add', spec], `Cannot add ${kindName(n)} device "${dev}"`);
        revert.add(() => unixdev(name, [...pidArgs, '--remove', n.path], 'undo'));
        applied.push(`added ${kindName(n)} ${dev}`);
      }
      writeNodes(p, name, toNodes, idmap);
      revert.add(() => writeNodes(p, name, fromNodes, idmap));
      return [...applied, ...skipped];
    },
  };
}

const unixHandler: DeviceHandler = {
  name: 'unix',
  start(t, devices) {
    // Resolved first: a required host node that is missing fails the start before anything is made.
    const nodes = planUnixDevices(devices.unix);
    const rules = unixDeviceRules(nodes);
    return {
      cgroupRules: rules,
      // Their grants change the cgroup prefix all containers share, by what the others hold: live state.
      unreplayable: rules.length ? 'it has unix devices' : undefined,
      files: () => nodesRunFiles(t.ctx.paths, t.cfg.name, nodes, t.idmap),
      helperArgs: ['--nodes-file', nodesFile(t.ctx.paths, t.cfg.name)],
    };
  },
  live: (t, change) => changeLive(t, change.removed, change.added),
};

export const unixDevice: DeviceType = {
  key: 'unix',
  types: ['unix-char', 'unix-block'],
  validate: validateUnixDevice,
  handler: unixHandler,
};
