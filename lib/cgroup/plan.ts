import path from 'node:path';
import type { DeviceRule } from './devices.js';
import { deviceRuleText } from './devices.js';
import type { CgroupFs, CgroupSys } from './sys.js';

/**
 * The cgroup work of a start as data. The driver runs against this fs, which changes nothing:
 * its mkdirs, writes and chowns become steps (native/plan.c's mkdir, write, chown, devices) that
 * the helper executes. Reads go to the host, except in the dirs the steps would make, where they
 * answer as the kernel would for a new cgroup (the controller files of the parent's hierarchy, an
 * empty cpuset, what the steps wrote).
 *
 * Only the container's own dirs are planned. A start that must change the layout above them (make
 * a prefix level, remove a stale cgroup a crash left) is host set-up, not a start step:
 * CgroupSetupNeeded, and the caller does that part on the host first.
 */
export class CgroupSetupNeeded extends Error {
  constructor(readonly what: string) {
    super(`cgroup set-up needed: ${what}`);
  }
}

const errno = (code: string, p: string) => Object.assign(new Error(`${code}: ${p}`), { code });

export interface CgroupPlanner {
  sys: CgroupSys;
  /** v2's device program, as a step */
  attachDevices(dir: string, rules: readonly DeviceRule[]): Promise<void>;
  /** the steps, in order */
  readonly steps: string[][];
}

/** `own`: the container's cgroup dirs (the only ones the steps may make). */
export function planCgroups(base: CgroupSys, own: readonly string[]): CgroupPlanner {
  const real = base.fs;
  const steps: string[][] = [];
  const made = new Set<string>();
  const written = new Map<string, string>();
  const isOwn = (p: string) => own.some((d) => p === d || p.startsWith(`${d}/`));
  const dirExists = async (d: string) => made.has(d) || (await real.exists(d));
  /** In a dir the steps make: what a new cgroup's file holds, or undefined for "read the host". */
  const fresh = async (p: string): Promise<string> => {
    const dir = path.dirname(p);
    const file = path.basename(p);
    const parent = path.dirname(dir);
    // The same files as its parent (throws ENOENT as the kernel would when it has none).
    const theirs = await readAny(path.join(parent, file));
    // A new cpuset cgroup starts empty; a new v2 cgroup enables nothing for its children.
    if (file === 'cpuset.cpus' || file === 'cpuset.mems' || file === 'cgroup.subtree_control') return '';
    // A v2 child may use what its parent enabled for it.
    if (file === 'cgroup.controllers') return (await readAny(path.join(parent, 'cgroup.subtree_control'))).trim();
    // Other values are not read at start.
    return theirs;
  };
  const readAny = async (p: string): Promise<string> => {
    if (path.basename(p) === 'devices.list') return deviceList(path.dirname(p));
    const w = written.get(p);
    if (w !== undefined) return w;
    if (made.has(path.dirname(p))) return fresh(p);
    return real.readFile(p);
  };
  /** v1's device list as the steps would leave it (a grant or deny on the shared prefix is read back). */
  const deviceList = async (dir: string): Promise<string> => {
    const base = made.has(dir) ? await deviceList(path.dirname(dir)) : await real.readFile(path.join(dir, 'devices.list'));
    const rules = base.split('\n').filter(Boolean);
    const out = new Set(rules);
    for (const [op, file, data] of steps) {
      if (op !== 'write' || path.dirname(file) !== dir) continue;
      const how = path.basename(file);
      if (how === 'devices.deny') {
        if (data === 'a') out.clear();
        else out.delete(data);
      } else if (how === 'devices.allow') out.add(data === 'a' ? 'a *:* rwm' : data);
    }
    return [...out].map((r) => `${r}\n`).join('');
  };
  const fs: CgroupFs = {
    readFile: readAny,
    async writeFile(p, data) {
      if (!(await dirExists(path.dirname(p)))) throw errno('ENOENT', p);
      steps.push(['write', p, data]);
      written.set(p, data);
    },
    async mkdir(p) {
      if (await dirExists(p)) throw errno('EEXIST', p);
      if (!isOwn(p)) throw new CgroupSetupNeeded(`make ${p}`);
      if (!(await dirExists(path.dirname(p)))) throw errno('ENOENT', p);
      steps.push(['mkdir', p]);
      made.add(p);
    },
    async rmdir(p) {
      throw new CgroupSetupNeeded(`remove ${p}`);
    },
    async rename(from) {
      throw new CgroupSetupNeeded(`make ${from}`);
    },
    async subdirs(p) {
      return made.has(p) ? [...made].filter((d) => path.dirname(d) === p).map((d) => path.basename(d)) : real.subdirs(p);
    },
    async exists(p) {
      if (made.has(p) || written.has(p)) return true;
      if (made.has(path.dirname(p))) {
        try {
          await fresh(p);
          return true;
        } catch {
          return false;
        }
      }
      return real.exists(p);
    },
    async chown(p, uid, gid) {
      steps.push(['chown', p, String(uid), String(gid)]);
    },
  };
  return {
    sys: { ...base, fs },
    steps,
    async attachDevices(dir, rules) {
      steps.push(['devices', dir, String(rules.length), ...rules.map(deviceRuleText)]);
    },
  };
}
