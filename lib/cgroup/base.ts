import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { CgroupLayout } from './layout.js';
import type { CgroupSys } from './sys.js';
import { realSys } from './sys.js';
import { isErrnoCode, removeTree, subtreePids, validateCgroupName, validatePrefix, waitUntil } from './tree.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, CgroupUsage, FreezeState } from './types.js';
import type { DeviceRule } from './devices.js';

export interface Timeouts {
  /** how long a freeze may take before it is undone and reported */
  freezeMs: number;
  /** how long killAll waits for the subtree to empty */
  killMs: number;
  /** how long remove retries an rmdir that answers EBUSY */
  removeMs: number;
  /** polling interval for all of the above */
  intervalMs: number;
}

/** What a delegated cgroup's owner may write (as systemd's and LXC's delegation). */
const DELEGATED_FILES = ['cgroup.procs', 'tasks', 'cgroup.threads', 'cgroup.subtree_control', 'cgroup.clone_children'];

export const DEFAULT_TIMEOUTS: Timeouts = { freezeMs: 5000, killMs: 10000, removeMs: 5000, intervalMs: 20 };

export interface DriverOptions {
  layout: CgroupLayout;
  /** one or more "/"-separated levels under each hierarchy's top, e.g. "tslxc" */
  prefix: string;
  sys?: CgroupSys;
  timeouts?: Partial<Timeouts>;
  /** things that work, but not fully (a controller that could not be enabled, swap not accounted) */
  onWarning?: (message: string) => void;
  /**
   * v2: puts the device allow list on a container's cgroup (a BPF device program: the native
   * helper's `devices` mode). Without it a v2 container may open any device node it reaches.
   */
  attachDevices?: (dir: string, rules: readonly DeviceRule[], opts?: { replace?: boolean }) => Promise<void>;
}

/** What both drivers do the same way: paths, existence, pids, kill loop, remove. */
export abstract class CgroupBase implements CgroupDriver {
  abstract readonly version: 'v1' | 'v2';
  abstract readonly devicesEnforced: boolean;
  readonly hybrid: boolean;
  readonly prefix: string;
  readonly layout: CgroupLayout;
  protected readonly sys: CgroupSys;
  protected readonly timeouts: Timeouts;
  protected readonly warn: (message: string) => void;

  constructor(opts: DriverOptions) {
    this.layout = opts.layout;
    this.hybrid = opts.layout.hybrid;
    this.prefix = validatePrefix(opts.prefix);
    this.sys = opts.sys ?? realSys;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.warn = opts.onWarning ?? (() => {});
  }

  async delegate(name: string, uid: number, gid: number): Promise<void> {
    const chown = this.sys.fs.chown;
    if (!chown) return;
    for (const dir of this.dirs(name)) {
      await chown(dir, uid, gid);
      for (const f of DELEGATED_FILES) {
        const file = path.join(dir, f);
        if (await this.sys.fs.exists(file)) await chown(file, uid, gid);
      }
    }
  }

  /** Mount points of every hierarchy this driver puts containers in. */
  protected abstract tops(): string[];

  abstract thawedMark(name: string): { file: string; line: string };
  abstract create(name: string, devices?: readonly DeviceRule[]): Promise<string[]>;
  abstract changeDevices(name: string, before: readonly DeviceRule[], after: readonly DeviceRule[]): Promise<void>;
  abstract attachDirs(name: string): Promise<string[]>;
  abstract applyLimits(name: string, limits: CgroupLimits): Promise<void>;
  abstract stats(name: string): Promise<CgroupStats>;
  abstract freeze(name: string): Promise<void>;
  abstract thaw(name: string): Promise<void>;
  abstract state(name: string): Promise<FreezeState>;
  abstract usage(name: string): Promise<CgroupUsage>;
  /** One round of killing: the version-specific way to SIGKILL everything in the subtree. */
  protected abstract killRound(name: string, pids: number[]): Promise<void>;

  dirs(name: string): string[] {
    validateCgroupName(name);
    return this.tops().map((t) => path.join(t, this.prefix, name));
  }

  /** The prefix dir in a hierarchy, and each level of it from the top down. */
  protected prefixLevels(top: string): string[] {
    const parts = this.prefix.split('/');
    return parts.map((_p, i) => path.join(top, ...parts.slice(0, i + 1)));
  }

  async exists(name: string): Promise<boolean> {
    for (const d of this.dirs(name)) if (await this.sys.fs.exists(d)) return true;
    return false;
  }

  async pids(name: string): Promise<number[]> {
    return subtreePids(this.sys, this.dirs(name));
  }

  /**
   * A stale cgroup (a crash left it) is removed before making a new one; one that still holds
   * processes belongs to a running container and is never taken over.
   */
  protected async clearStale(name: string): Promise<void> {
    if (!(await this.exists(name))) return;
    const pids = await this.pids(name);
    if (pids.length > 0) {
      throw new TslxcError(
        `Cannot create the cgroups of "${name}"`,
        `they already exist and hold ${pids.length} process(es) (PIDs ${pids.slice(0, 5).join(', ')}${pids.length > 5 ? ', ...' : ''})`,
        `stop the container first, or remove ${this.dirs(name)[0]}`,
      );
    }
    await this.remove(name);
  }

  async killAll(name: string): Promise<void> {
    let last: number[] = [];
    const ok = await waitUntil(
      this.sys,
      async () => {
        last = await this.pids(name);
        if (last.length === 0) return true;
        await this.killRound(name, last);
        return false;
      },
      { timeoutMs: this.timeouts.killMs, intervalMs: this.timeouts.intervalMs },
    );
    if (!ok) {
      throw new TslxcError(
        `Cannot kill the processes of "${name}"`,
        `PIDs ${last.slice(0, 10).join(', ')} are still there after ${this.timeouts.killMs} ms (stuck in the kernel?)`,
        'look at /proc/PID/stack and retry',
      );
    }
  }

  async remove(name: string): Promise<void> {
    const dirs = this.dirs(name);
    if ((await this.pids(name)).length > 0) await this.killAll(name);
    const deadline = { timeoutMs: this.timeouts.removeMs, intervalMs: this.timeouts.intervalMs };
    const errors: Error[] = [];
    // Every hierarchy is tried even when one fails, so as little as possible is left behind.
    for (const d of dirs) {
      try {
        await removeTree(this.sys, d, deadline);
      } catch (err) {
        errors.push(err as Error);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  async removePrefix(): Promise<void> {
    for (const top of this.tops()) {
      for (const level of this.prefixLevels(top).reverse()) {
        try {
          await this.sys.fs.rmdir(level);
        } catch (err) {
          if (isErrnoCode(err, 'ENOENT')) continue;
          // Another container still lives under it: keep it, and its parents.
          if (isErrnoCode(err, 'EBUSY', 'ENOTEMPTY')) break;
          throw err;
        }
      }
    }
  }

  /** mkdir one level; EEXIST is fine for shared levels, and tells the caller it was not made now. */
  protected async mkdirLevel(dir: string): Promise<boolean> {
    try {
      await this.sys.fs.mkdir(dir);
      return true;
    } catch (err) {
      if (isErrnoCode(err, 'EEXIST')) return false;
      throw new TslxcError(`Cannot create cgroup ${dir}`, `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim(), undefined, {
        cause: err,
      });
    }
  }

  /** mkdir the container's own level: unlike a prefix level it must be new, or it is someone else's. */
  protected async mkdirContainer(dir: string): Promise<void> {
    if (!(await this.mkdirLevel(dir))) {
      throw new TslxcError(`Cannot create cgroup ${dir}`, 'it appeared while being created (is the container being started twice?)');
    }
  }

  /**
   * Undo a failed create: only what this call made (so a concurrent start's cgroups are never
   * touched), deepest first; a prefix level another container moved into meanwhile stays.
   */
  protected async revertCreate(made: string[]): Promise<void> {
    const deadline = { timeoutMs: this.timeouts.removeMs, intervalMs: this.timeouts.intervalMs };
    for (const d of [...made].reverse()) {
      try {
        if (this.prefixOfLevel(d)) await this.sys.fs.rmdir(d);
        else await removeTree(this.sys, d, deadline);
      } catch {
        // best effort: the error that made create fail is the one to report
      }
    }
  }

  private prefixOfLevel(dir: string): boolean {
    return this.tops().some((t) => this.prefixLevels(t).includes(dir));
  }

  protected validateLimits(l: CgroupLimits): void {
    const check = (key: keyof CgroupLimits, ok: (v: number) => boolean, expected: string) => {
      const v = l[key];
      if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || !ok(v))) {
        throw new TslxcError(`Invalid cgroup limit ${key}=${String(v)}`, `expected ${expected}`);
      }
    };
    check('memoryBytes', (v) => v > 0, 'a number of bytes above 0');
    check('memorySwapBytes', (v) => v >= 0, 'a number of bytes, 0 or more');
    check('cpuQuotaUs', (v) => v >= 1000, 'at least 1000 microseconds');
    check('cpuPeriodUs', (v) => v >= 1000 && v <= 1_000_000, 'between 1000 and 1000000 microseconds');
    check('cpuWeight', (v) => v >= 1 && v <= 10000, 'a weight between 1 and 10000');
    check('pidsMax', (v) => v >= 1, 'at least 1');
    check('blkioWeight', (v) => v >= 10 && v <= 1000, 'a weight between 10 and 1000');
    if (l.cpus !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(l.cpus)) {
      throw new TslxcError(`Invalid cgroup limit cpus="${l.cpus}"`, 'expected a normalized CPU list like 0-1,3');
    }
  }

  protected missingController(controller: string, dir: string): TslxcError {
    return new TslxcError(
      `Cannot apply the ${controller} limit to ${dir}`,
      `the ${controller} controller is not available for this cgroup on this host`,
      `remove the limit, or enable the ${controller} controller`,
    );
  }
}
