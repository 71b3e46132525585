import path from 'node:path';
import { TslxcError } from '../errors.js';
import { CgroupBase } from './base.js';
import type { DriverOptions } from './base.js';
import { DEFAULT_DEVICE_RULES, deviceRuleChange, deviceRuleText, type DeviceRule } from './devices.js';
import { v1HierarchyOf } from './layout.js';
import { isErrnoCode, parseKeyed, readControl, readNumber, waitUntil, writeControl } from './tree.js';
import type { CgroupLimits, CgroupStats, CgroupUsage, FreezeState } from './types.js';

/** v1 "unlimited" for the memory and CFS files. */
const UNLIMITED = '-1';

/** v2 weight 1-10000 (default 100) to v1 shares 2-262144 (default 1024), as the kernel maps them. */
export function weightToShares(weight: number): number {
  return Math.min(262144, Math.max(2, Math.round((weight * 1024) / 100)));
}

/**
 * cgroup v1 (and hybrid): one dir per hierarchy, controllers each in their own tree. The named
 * systemd hierarchy and the controller-less cgroup2 of a hybrid host get a dir too, because a
 * container's systemd needs both to track its services.
 */
export class CgroupV1 extends CgroupBase {
  readonly version = 'v1' as const;
  readonly devicesEnforced = true;

  constructor(opts: DriverOptions) {
    super(opts);
    if (opts.layout.version !== 'v1') throw new Error('CgroupV1 needs a v1 layout');
  }

  protected tops(): string[] {
    const tops = this.layout.v1.map((h) => h.mountPoint);
    if (this.layout.unified) tops.push(this.layout.unified.mountPoint);
    return tops;
  }

  /** The container's dir in the hierarchy of `controller`, or undefined when it is not mounted. */
  private dirOf(controller: string, name: string): string | undefined {
    const h = v1HierarchyOf(this.layout, controller);
    return h ? path.join(h.mountPoint, this.prefix, name) : undefined;
  }

  async create(name: string, devices: readonly DeviceRule[] = []): Promise<string[]> {
    const dirs = this.dirs(name);
    await this.clearStale(name);
    const made: string[] = [];
    try {
      for (const top of this.tops()) {
        const isCpuset = v1HierarchyOf(this.layout, 'cpuset')?.mountPoint === top;
        const isDevices = v1HierarchyOf(this.layout, 'devices')?.mountPoint === top;
        let parent = top;
        for (const level of this.prefixLevels(top)) {
          // The prefix gets the same device policy as the containers below it. A privileged
          // container can mount the devices hierarchy and write devices.allow on its own cgroup;
          // the kernel accepts that only within what the parent allows, so the parent must not
          // allow everything. The kernel takes "deny a" only while a level has no children, and
          // a container started beside us could move in as soon as the level exists: so the
          // level is made under a private name, given its policy, and renamed into place.
          const fresh = isDevices ? await this.mkdirPreparedLevel(level, (dir) => this.writeDefaultDevices(dir)) : await this.mkdirLevel(level);
          if (fresh) made.push(level);
          // A new cpuset cgroup starts with no CPUs and no memory nodes, and a task cannot join it
          // until both are set: copy the parent's (also mending a prefix level left empty).
          if (isCpuset) await this.inheritCpuset(parent, level);
          parent = level;
        }
        const dir = path.join(top, this.prefix, name);
        await this.mkdirContainer(dir);
        made.push(dir);
        if (isCpuset) await this.inheritCpuset(parent, dir);
        if (isDevices) {
          await this.writeDefaultDevices(dir);
          const grants = deviceRuleChange([], devices).allow;
          if (grants.length) {
            await this.trimPrefix(top);
            await this.grantToPrefix(top, grants);
          }
          for (const rule of grants) await this.writeDeviceRule(dir, 'allow', rule);
        }
      }
    } catch (err) {
      await this.revertCreate(made);
      throw err;
    }
    return dirs;
  }

  async attachDirs(name: string): Promise<string[]> {
    // v1 has no rule against tasks in inner cgroups: the container's own dirs do.
    return this.dirs(name);
  }

  /**
   * A prefix level made complete before anyone can see it: mkdir under a private name, prepare,
   * rename (v1 cgroups can be renamed within their parent). Losing the race to another start
   * (the level appeared meanwhile) is fine: that one prepared it; ours is removed.
   */
  private async mkdirPreparedLevel(level: string, prepare: (dir: string) => Promise<void>): Promise<boolean> {
    if (await this.sys.fs.exists(level)) return false;
    const tmp = `${level}.new-${process.pid}`;
    if (!(await this.mkdirLevel(tmp))) throw new TslxcError(`Cannot create cgroup ${level}`, `${tmp} is in the way`, `remove it with rmdir ${tmp}`);
    try {
      await prepare(tmp);
      await this.sys.fs.rename(tmp, level);
      return true;
    } catch (err) {
      await this.sys.fs.rmdir(tmp).catch(() => undefined);
      if (isErrnoCode(err, 'EEXIST', 'ENOTEMPTY', 'EBUSY')) return false;
      throw err;
    }
  }

  private async inheritCpuset(parent: string, dir: string): Promise<void> {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const mine = await readControl(this.sys, dir, file);
      if (mine !== undefined && mine !== '') continue;
      const theirs = await readControl(this.sys, parent, file);
      if (theirs) await writeControl(this.sys, dir, file, theirs, `${file} (copied from ${parent})`);
    }
  }

  private async writeDeviceRule(dir: string, how: 'allow' | 'deny', rule: DeviceRule): Promise<void> {
    await writeControl(this.sys, dir, `devices.${how}`, deviceRuleText(rule), `device access to ${rule.what}`);
  }

  /**
   * A grant beyond the defaults must be in every prefix level above the container first: v1
   * gives a cgroup only what its parent has. The prefix is shared, so while a container holds a
   * grant, a privileged container beside it that mounts the devices hierarchy itself could write
   * the same rule on its own cgroup (as it could any default). The prefix never keeps a grant no
   * container holds any more: see trimPrefix.
   */
  private async grantToPrefix(top: string, rules: readonly DeviceRule[]): Promise<void> {
    for (const level of this.prefixLevels(top)) {
      const has = new Set(await this.deviceList(level));
      for (const rule of rules) if (!has.has(deviceRuleText(rule))) await this.writeDeviceRule(level, 'allow', rule);
    }
  }

  /** The rules a cgroup has (devices.list), in devices.allow's syntax. */
  private async deviceList(dir: string): Promise<string[]> {
    return ((await readControl(this.sys, dir, 'devices.list')) ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /**
   * Denies, on the prefix levels, every rule beyond the defaults that no container under the
   * prefix has any more (a removed grant; a stopped container's, left behind, goes at the next
   * device change or start of any container). Deepest level first; a deny reaches the cgroups below, none
   * of which needs it.
   */
  private async trimPrefix(top: string): Promise<void> {
    const levels = this.prefixLevels(top);
    const prefixDir = levels[levels.length - 1]!;
    const needed = new Set(DEFAULT_DEVICE_RULES.map(deviceRuleText));
    // Most of the time the prefix has the defaults alone: nothing to read below it.
    if ((await this.deviceList(levels[0]!)).every((r) => needed.has(r))) return;
    for (const sub of await this.sys.fs.subdirs(prefixDir).catch(() => [] as string[])) {
      for (const r of await this.deviceList(path.join(prefixDir, sub))) needed.add(r);
    }
    for (const level of [...levels].reverse()) {
      for (const r of await this.deviceList(level)) {
        if (needed.has(r) || r === 'a *:* rwm') continue;
        await writeControl(this.sys, level, 'devices.deny', r, 'a device rule no container holds any more');
      }
    }
  }

  async changeDevices(name: string, before: readonly DeviceRule[], after: readonly DeviceRule[]): Promise<void> {
    const dir = this.dirOf('devices', name);
    const top = v1HierarchyOf(this.layout, 'devices')?.mountPoint;
    if (!dir || !top) return;
    const { allow, deny } = deviceRuleChange(before, after);
    if (allow.length) await this.grantToPrefix(top, allow);
    // A child cgroup copied its parent's list when it was made: a new grant goes down the whole
    // subtree, parents first (the kernel lets a child have only what its parent has).
    if (allow.length) {
      const walk = async (d: string): Promise<void> => {
        try {
          for (const rule of allow) await this.writeDeviceRule(d, 'allow', rule);
        } catch (err) {
          // A cgroup systemd inside removed meanwhile has nothing left to grant to.
          if (d === dir || !isErrnoCode((err as Error).cause, 'ENOENT')) throw err;
          return;
        }
        for (const sub of await this.sys.fs.subdirs(d).catch(() => [] as string[])) await walk(path.join(d, sub));
      };
      await walk(dir);
    }
    // A deny on the container's cgroup reaches every cgroup below it (the kernel propagates it).
    for (const rule of deny) await this.writeDeviceRule(dir, 'deny', rule);
    if (deny.length) await this.trimPrefix(top);
  }

  private async writeDefaultDevices(dir: string): Promise<void> {
    await writeControl(this.sys, dir, 'devices.deny', 'a', 'the device policy (deny all)');
    for (const rule of DEFAULT_DEVICE_RULES) {
      // One rule per write: the kernel parses exactly one per write(2).
      await writeControl(this.sys, dir, 'devices.allow', deviceRuleText(rule), `device access to ${rule.what}`);
    }
  }

  async applyLimits(name: string, limits: CgroupLimits): Promise<void> {
    this.validateLimits(limits);
    await this.applyMemory(name, limits);
    await this.applyCpu(name, limits);
    await this.applyCpuset(name, limits);
    await this.applyPids(name, limits);
    await this.applyBlkio(name, limits);
  }

  private async applyMemory(name: string, l: CgroupLimits): Promise<void> {
    const dir = this.dirOf('memory', name);
    const wanted = l.memoryBytes !== undefined || l.memorySwapBytes !== undefined;
    if (!dir) {
      if (wanted) throw this.missingController('memory', `${this.prefix}/${name}`);
      return;
    }
    const hard = l.memoryBytes !== undefined && !l.memorySoft ? String(l.memoryBytes) : UNLIMITED;
    const soft = l.memoryBytes !== undefined && l.memorySoft ? String(l.memoryBytes) : UNLIMITED;
    // v1 counts memory+swap together; a swap allowance is meaningful only on top of a hard limit.
    const memsw = l.memorySwapBytes !== undefined && hard !== UNLIMITED ? String(l.memoryBytes! + l.memorySwapBytes) : UNLIMITED;
    const hasMemsw = (await readControl(this.sys, dir, 'memory.memsw.limit_in_bytes')) !== undefined;
    if (!hasMemsw && memsw !== UNLIMITED) {
      this.warn(`swap of "${name}" is not limited: the kernel does not account swap (boot with swapaccount=1)`);
    }
    if (l.memorySwapBytes !== undefined && l.memorySoft) {
      this.warn(`swap of "${name}" is not limited: a swap limit needs a hard memory limit`);
    }
    // The kernel keeps limit_in_bytes <= memsw.limit_in_bytes at every step: lift memsw first,
    // set the memory limit, then bring memsw down to its target.
    if (hasMemsw) await writeControl(this.sys, dir, 'memory.memsw.limit_in_bytes', UNLIMITED, 'the memory+swap limit');
    await writeControl(this.sys, dir, 'memory.limit_in_bytes', hard, 'the memory limit');
    if (hasMemsw && memsw !== UNLIMITED) await writeControl(this.sys, dir, 'memory.memsw.limit_in_bytes', memsw, 'the memory+swap limit');
    await writeControl(this.sys, dir, 'memory.soft_limit_in_bytes', soft, 'the soft memory limit');
  }

  private async applyCpu(name: string, l: CgroupLimits): Promise<void> {
    const dir = this.dirOf('cpu', name);
    if (!dir) {
      if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined || l.cpuWeight !== undefined) {
        throw this.missingController('cpu', `${this.prefix}/${name}`);
      }
      return;
    }
    await writeControl(this.sys, dir, 'cpu.cfs_period_us', String(l.cpuPeriodUs ?? 100000), 'the CPU period');
    await writeControl(this.sys, dir, 'cpu.cfs_quota_us', l.cpuQuotaUs !== undefined ? String(l.cpuQuotaUs) : UNLIMITED, 'the CPU quota');
    await writeControl(this.sys, dir, 'cpu.shares', String(weightToShares(l.cpuWeight ?? 100)), 'the CPU weight');
  }

  private async applyCpuset(name: string, l: CgroupLimits): Promise<void> {
    const dir = this.dirOf('cpuset', name);
    if (!dir) {
      if (l.cpus !== undefined) throw this.missingController('cpuset', `${this.prefix}/${name}`);
      return;
    }
    // v1 has no "inherit" value: no limit means the parent's CPUs.
    const cpus = l.cpus ?? (await readControl(this.sys, path.dirname(dir), 'cpuset.cpus'));
    if (cpus) await writeControl(this.sys, dir, 'cpuset.cpus', cpus, 'the CPU set');
  }

  private async applyPids(name: string, l: CgroupLimits): Promise<void> {
    const dir = this.dirOf('pids', name);
    if (!dir) {
      if (l.pidsMax !== undefined) throw this.missingController('pids', `${this.prefix}/${name}`);
      return;
    }
    await writeControl(this.sys, dir, 'pids.max', l.pidsMax !== undefined ? String(l.pidsMax) : 'max', 'the process limit');
  }

  private async applyBlkio(name: string, l: CgroupLimits): Promise<void> {
    const dir = this.dirOf('blkio', name);
    // blkio.weight belongs to CFQ (gone since 5.0); BFQ offers blkio.bfq.weight. Their defaults differ.
    const file = !dir
      ? undefined
      : (await readControl(this.sys, dir, 'blkio.weight')) !== undefined
        ? { name: 'blkio.weight', dflt: 500 }
        : (await readControl(this.sys, dir, 'blkio.bfq.weight')) !== undefined
          ? { name: 'blkio.bfq.weight', dflt: 100 }
          : undefined;
    if (!dir || !file) {
      // A weight is a hint under contention, not a bound: going without it is worth a warning only.
      if (l.blkioWeight !== undefined) this.warn(`the I/O weight of "${name}" is not applied: no blkio weight support on this host (BFQ scheduler not in use)`);
      return;
    }
    await writeControl(this.sys, dir, file.name, String(l.blkioWeight ?? file.dflt), 'the I/O weight');
  }

  async freeze(name: string): Promise<void> {
    const dir = this.freezerDir(name);
    await writeControl(this.sys, dir, 'freezer.state', 'FROZEN', 'the freezer state');
    let state: string | undefined;
    const ok = await waitUntil(
      this.sys,
      async () => {
        state = await readControl(this.sys, dir, 'freezer.state');
        if (state === 'FROZEN') return true;
        // While FREEZING, writing again retries the tasks that were busy in the kernel last time.
        await writeControl(this.sys, dir, 'freezer.state', 'FROZEN', 'the freezer state');
        return false;
      },
      { timeoutMs: this.timeouts.freezeMs, intervalMs: this.timeouts.intervalMs },
    );
    if (!ok) {
      await writeControl(this.sys, dir, 'freezer.state', 'THAWED', 'the freezer state').catch(() => {});
      throw new TslxcError(
        `Cannot freeze "${name}"`,
        `its freezer stayed ${state ?? 'unreadable'} for ${this.timeouts.freezeMs} ms (a task is stuck in the kernel?), so it was thawed again`,
        'retry in a moment',
      );
    }
  }

  async thaw(name: string): Promise<void> {
    const dir = this.freezerDir(name);
    await writeControl(this.sys, dir, 'freezer.state', 'THAWED', 'the freezer state');
    // A cgroup that vanished meanwhile (the monitor removes a stopped container's) has nothing left to thaw.
    const ok = await waitUntil(this.sys, async () => ['THAWED', undefined].includes(await readControl(this.sys, dir, 'freezer.state')), {
      timeoutMs: this.timeouts.freezeMs,
      intervalMs: this.timeouts.intervalMs,
    });
    if (!ok) throw new TslxcError(`Cannot thaw "${name}"`, `its freezer did not report THAWED within ${this.timeouts.freezeMs} ms`);
  }

  async state(name: string): Promise<FreezeState> {
    const s = await readControl(this.sys, this.freezerDir(name), 'freezer.state');
    if (s === undefined) throw new TslxcError(`Cannot read the freezer state of "${name}"`, 'its freezer cgroup does not exist');
    return s === 'FROZEN' ? 'frozen' : 'thawed';
  }

  thawedMark(name: string): { file: string; line: string } {
    return { file: path.join(this.freezerDir(name), 'freezer.state'), line: 'THAWED' };
  }

  private freezerDir(name: string): string {
    const dir = this.dirOf('freezer', name);
    if (!dir) throw new TslxcError('Cannot freeze or thaw containers here', 'the freezer controller is not mounted on this host');
    return dir;
  }

  /**
   * Freeze first so nothing forks while the list is being killed; a frozen v1 task only dies once
   * thawed, so thaw right after. Without a freezer, plain kill rounds have to do.
   */
  protected async killRound(name: string, pids: number[]): Promise<void> {
    let frozen = false;
    if (this.dirOf('freezer', name)) {
      try {
        await this.freeze(name);
        frozen = true;
      } catch {
        // a task stuck in the kernel: kill anyway, the next round tries again
      }
    }
    const all = frozen ? await this.pids(name) : pids;
    for (const pid of all) this.sys.kill(pid, 'SIGKILL');
    if (frozen) {
      // The container's monitor may remove the cgroup as soon as the last task died: then there is
      // nothing left to thaw.
      await this.thaw(name).catch(async (err) => {
        if (await this.sys.fs.exists(this.freezerDir(name))) throw err;
      });
    }
  }

  async usage(name: string): Promise<CgroupUsage> {
    const mem = this.dirOf('memory', name);
    const acct = this.dirOf('cpuacct', name);
    const pids = this.dirOf('pids', name);
    const u: CgroupUsage = {};
    if (mem) {
      u.memoryBytes = await readNumber(this.sys, mem, 'memory.usage_in_bytes');
      u.memoryPeakBytes = await readNumber(this.sys, mem, 'memory.max_usage_in_bytes');
      const memsw = await readNumber(this.sys, mem, 'memory.memsw.usage_in_bytes');
      if (memsw !== undefined && u.memoryBytes !== undefined) u.swapBytes = Math.max(0, memsw - u.memoryBytes);
    }
    if (acct) u.cpuTimeNs = await readNumber(this.sys, acct, 'cpuacct.usage');
    if (pids) u.processes = await readNumber(this.sys, pids, 'pids.current');
    return dropUndefined(u);
  }

  async stats(name: string): Promise<CgroupStats> {
    const read = (controller: string, file: string) => {
      const dir = this.dirOf(controller, name);
      return dir ? readControl(this.sys, dir, file).catch(() => undefined) : Promise.resolve(undefined);
    };
    const [usageAll, memStat, usage, limit, memsw, procs] = await Promise.all([
      read('cpuacct', 'cpuacct.usage_all'),
      read('memory', 'memory.stat'),
      read('memory', 'memory.usage_in_bytes'),
      read('memory', 'memory.limit_in_bytes'),
      read('memory', 'memory.memsw.usage_in_bytes'),
      read('pids', 'pids.current'),
    ]);
    const cpu: CgroupStats['cpu'] = [];
    // "cpu user system" then one line per CPU, in nanoseconds.
    for (const line of (usageAll ?? '').split('\n').slice(1)) {
      const [i, user, system] = line.trim().split(/\s+/).map(Number);
      if (Number.isInteger(i) && Number.isFinite(user) && Number.isFinite(system)) cpu.push({ cpu: i!, user: user! / 1e9, system: system! / 1e9 });
    }
    // The total_ keys count the container's own sub-cgroups (its systemd's services) too.
    const stat = parseKeyed(memStat ?? '');
    const memory: Record<string, number> = {};
    for (const [key, from] of V1_MEMORY_KEYS) {
      const v = Number(stat.get(`total_${from}`) ?? stat.get(from));
      if (stat.has(`total_${from}`) || stat.has(from)) memory[key] = Number.isFinite(v) ? v : 0;
    }
    const num = (v: string | undefined) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v));
    const memoryBytes = num(usage);
    const limitBytes = num(limit);
    const swapTotal = num(memsw);
    return dropUndefined({
      cpu,
      memory,
      memoryBytes,
      // v1 says "no limit" with the largest page-aligned number.
      memoryLimitBytes: limitBytes !== undefined && limitBytes < V1_NO_LIMIT ? limitBytes : undefined,
      swapBytes: swapTotal !== undefined && memoryBytes !== undefined ? Math.max(0, swapTotal - memoryBytes) : undefined,
      processes: num(procs),
    });
  }
}

/** memory.stat's v1 keys by the names CgroupStats uses. */
const V1_MEMORY_KEYS: ReadonlyArray<[string, string]> = [
  ['active_anon', 'active_anon'],
  ['active_file', 'active_file'],
  ['inactive_anon', 'inactive_anon'],
  ['inactive_file', 'inactive_file'],
  ['unevictable', 'unevictable'],
  ['writeback', 'writeback'],
  ['dirty', 'dirty'],
  ['mapped', 'mapped_file'],
  ['rss', 'rss'],
  ['shmem', 'shmem'],
  ['cache', 'cache'],
];
const V1_NO_LIMIT = 2 ** 62;

export function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
