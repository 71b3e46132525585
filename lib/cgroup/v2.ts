import { fullDeviceList, type DeviceRule } from './devices.js';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { CgroupBase } from './base.js';
import type { DriverOptions } from './base.js';
import type { UnifiedHierarchy } from './layout.js';
import { isErrnoCode, parseKeyed, readControl, readNumber, waitUntil, writeControl } from './tree.js';
import type { CgroupLimits, CgroupStats, CgroupUsage, FreezeState } from './types.js';
import { dropUndefined } from './v1.js';

/** The controllers a container's limits use; enabled down to the prefix so its cgroup gets the files. */
export const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'pids'] as const;

/**
 * An attached process joins this leaf under the container's cgroup: v2 forbids tasks in a cgroup
 * that hands controllers to its children, and a container's systemd does exactly that with its
 * root. Joining the root would also stop systemd from enabling controllers later. (LXC uses ".lxc".)
 */
export const ATTACH_LEAF = '.tslxc-attach';

/**
 * cgroup v2 (unified): one tree, one dir per container. Controllers must be handed down level by
 * level through cgroup.subtree_control, and the container's own cgroup is left with none enabled
 * so its init can live in it.
 *
 * Devices: v2 has no devices.allow; the allow list is a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the container's cgroup (as LXC and runc do), by the attachDevices the caller gives
 * (tslxc: the native helper's `devices` mode). Without one, a v2 container may open any device
 * node it can reach: devicesEnforced says which.
 */
export class CgroupV2 extends CgroupBase {
  readonly version = 'v2' as const;
  readonly devicesEnforced: boolean;
  private readonly unified: UnifiedHierarchy;
  private readonly attachDevices?: DriverOptions['attachDevices'];

  constructor(opts: DriverOptions) {
    super(opts);
    if (!opts.layout.unified) throw new Error('CgroupV2 needs a layout with a cgroup2 mount');
    this.unified = opts.layout.unified;
    this.attachDevices = opts.attachDevices;
    this.devicesEnforced = opts.attachDevices !== undefined;
  }

  protected tops(): string[] {
    return [this.unified.mountPoint];
  }

  private dir(name: string): string {
    return this.dirs(name)[0]!;
  }

  async create(name: string, devices: readonly DeviceRule[] = []): Promise<string[]> {
    const dirs = this.dirs(name);
    await this.clearStale(name);
    const top = this.unified.mountPoint;
    const made: string[] = [];
    try {
      await this.enableControllers(top);
      for (const level of this.prefixLevels(top)) {
        if (await this.mkdirLevel(level)) made.push(level);
        await this.enableControllers(level);
      }
      const dir = this.dir(name);
      await this.mkdirContainer(dir);
      made.push(dir);
      await this.attachDevices?.(dir, fullDeviceList(devices));
    } catch (err) {
      await this.revertCreate(made);
      throw err;
    }
    return dirs;
  }

  /**
   * The new program (defaults and `after`) is attached before the old one is detached: both run
   * in between, and an access must pass both, so the window never allows more than either list.
   * The program sits on the container's cgroup, so it covers every cgroup below it too.
   */
  async changeDevices(name: string, _before: readonly DeviceRule[], after: readonly DeviceRule[]): Promise<void> {
    await this.attachDevices?.(this.dir(name), fullDeviceList(after), { replace: true });
  }

  /**
   * Hand the wanted controllers that `dir` has on to its children. A controller that will not
   * enable (the classic: cpu while a realtime task sits outside the root) is a warning, not a
   * failure: the container still runs, and a limit that needs it fails clearly in applyLimits.
   */
  private async enableControllers(dir: string): Promise<void> {
    const available = new Set((await readControl(this.sys, dir, 'cgroup.controllers'))?.split(/\s+/) ?? []);
    const enabled = new Set((await readControl(this.sys, dir, 'cgroup.subtree_control'))?.split(/\s+/) ?? []);
    for (const c of V2_CONTROLLERS) {
      if (!available.has(c) || enabled.has(c)) continue;
      try {
        await writeControl(this.sys, dir, 'cgroup.subtree_control', `+${c}`, `the ${c} controller`);
      } catch (err) {
        this.warn(`${(err as Error).message}; limits that need ${c} will fail`);
      }
    }
  }

  async attachDirs(name: string): Promise<string[]> {
    const leaf = path.join(this.dir(name), ATTACH_LEAF);
    try {
      await this.sys.fs.mkdir(leaf);
    } catch (err) {
      if (!isErrnoCode(err, 'EEXIST')) {
        throw new TslxcError(`Cannot create cgroup ${leaf} to attach to "${name}"`, (err as Error).message, undefined, { cause: err });
      }
    }
    return [leaf];
  }

  async applyLimits(name: string, l: CgroupLimits): Promise<void> {
    this.validateLimits(l);
    const dir = this.dir(name);
    const hard = l.memoryBytes !== undefined && !l.memorySoft ? String(l.memoryBytes) : 'max';
    const high = l.memoryBytes !== undefined && l.memorySoft ? String(l.memoryBytes) : 'max';
    await this.set(dir, 'memory', 'memory.max', hard, l.memoryBytes !== undefined, 'the memory limit');
    await this.set(dir, 'memory', 'memory.high', high, l.memoryBytes !== undefined, 'the soft memory limit');
    if (l.memorySwapBytes !== undefined && !(await this.sys.fs.exists(path.join(dir, 'memory.swap.max')))) {
      // The memory controller is there but swap accounting is off (kernel without CONFIG_MEMCG_SWAP).
      if (await this.sys.fs.exists(path.join(dir, 'memory.max'))) this.warn(`swap of "${name}" is not limited: the kernel does not account swap`);
      else throw this.missingController('memory', dir);
    } else {
      await this.set(dir, 'memory', 'memory.swap.max', l.memorySwapBytes !== undefined ? String(l.memorySwapBytes) : 'max', false, 'the swap limit');
    }
    const cpuMax = `${l.cpuQuotaUs ?? 'max'} ${l.cpuPeriodUs ?? 100000}`;
    await this.set(dir, 'cpu', 'cpu.max', cpuMax, l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined, 'the CPU quota');
    await this.set(dir, 'cpu', 'cpu.weight', String(l.cpuWeight ?? 100), l.cpuWeight !== undefined, 'the CPU weight');
    await this.applyCpuset(dir, l.cpus);
    await this.set(dir, 'pids', 'pids.max', l.pidsMax !== undefined ? String(l.pidsMax) : 'max', l.pidsMax !== undefined, 'the process limit');
    await this.applyIoWeight(name, dir, l);
  }

  /**
   * An empty cpuset.cpus means "the parent's": the v2 way to lift the limit. The kernel refuses to
   * empty the set of a populated cgroup that had one (ENOSPC: "cpusets with tasks can't be changed
   * to have empty cpus_allowed"), so lifting it on a running container writes the parent's
   * effective set instead; the next start writes the empty set again.
   */
  private async applyCpuset(dir: string, cpus: string | undefined): Promise<void> {
    try {
      await this.set(dir, 'cpuset', 'cpuset.cpus', cpus ?? '\n', cpus !== undefined, 'the CPU set');
    } catch (err) {
      if (cpus !== undefined || !/ENOSPC/.test((err as Error).message)) throw err;
      const parent = (await this.sys.fs.readFile(path.join(path.dirname(dir), 'cpuset.cpus.effective'))).trim();
      await writeControl(this.sys, dir, 'cpuset.cpus', parent, 'the CPU set');
    }
  }

  /**
   * Write one limit file. When the file is missing (controller unavailable) a requested limit is
   * an error and an unset one is nothing to do.
   */
  private async set(dir: string, controller: string, file: string, value: string, requested: boolean, what: string): Promise<void> {
    if (!(await this.sys.fs.exists(path.join(dir, file)))) {
      if (requested) throw this.missingController(controller, dir);
      return;
    }
    await writeControl(this.sys, dir, file, value, what);
  }

  private async applyIoWeight(name: string, dir: string, l: CgroupLimits): Promise<void> {
    // io.weight needs the iocost controller to act, io.bfq.weight the BFQ scheduler; both take a bare number.
    for (const file of ['io.weight', 'io.bfq.weight']) {
      if (await this.sys.fs.exists(path.join(dir, file))) {
        await writeControl(this.sys, dir, file, String(l.blkioWeight ?? 100), 'the I/O weight');
        return;
      }
    }
    if (l.blkioWeight !== undefined) this.warn(`the I/O weight of "${name}" is not applied: the io controller offers no weight here`);
  }

  async freeze(name: string): Promise<void> {
    await this.setFrozen(name, true);
  }

  async thaw(name: string): Promise<void> {
    await this.setFrozen(name, false);
  }

  /** cgroup.freeze asks; cgroup.events "frozen 1" says when every task has actually stopped. */
  private async setFrozen(name: string, frozen: boolean): Promise<void> {
    const dir = this.dir(name);
    if (!(await this.sys.fs.exists(path.join(dir, 'cgroup.freeze')))) {
      throw new TslxcError(`Cannot ${frozen ? 'freeze' : 'thaw'} "${name}"`, `${dir} has no cgroup.freeze (kernel older than 5.2, or no such cgroup)`);
    }
    await writeControl(this.sys, dir, 'cgroup.freeze', frozen ? '1' : '0', 'the freezer state');
    const ok = await waitUntil(this.sys, async () => (await this.frozenEvent(dir)) === frozen, {
      timeoutMs: this.timeouts.freezeMs,
      intervalMs: this.timeouts.intervalMs,
    });
    if (!ok) {
      if (frozen) await writeControl(this.sys, dir, 'cgroup.freeze', '0', 'the freezer state').catch(() => {});
      throw new TslxcError(
        `Cannot ${frozen ? 'freeze' : 'thaw'} "${name}"`,
        `cgroup.events did not report "frozen ${frozen ? 1 : 0}" within ${this.timeouts.freezeMs} ms${frozen ? ', so it was thawed again' : ''}`,
        'retry in a moment',
      );
    }
  }

  private async frozenEvent(dir: string): Promise<boolean> {
    const events = await readControl(this.sys, dir, 'cgroup.events');
    return parseKeyed(events ?? '').get('frozen') === '1';
  }

  thawedMark(name: string): { file: string; line: string } {
    return { file: path.join(this.dir(name), 'cgroup.freeze'), line: '0' };
  }

  async state(name: string): Promise<FreezeState> {
    const dir = this.dir(name);
    if ((await readControl(this.sys, dir, 'cgroup.events')) === undefined) {
      throw new TslxcError(`Cannot read the freezer state of "${name}"`, `${dir} does not exist`);
    }
    return (await this.frozenEvent(dir)) ? 'frozen' : 'thawed';
  }

  /**
   * cgroup.kill (5.14+) kills the whole subtree at once, forks included. Older kernels: freeze,
   * SIGKILL each task (v2 lets a fatal signal through the freezer), thaw.
   */
  protected async killRound(name: string, pids: number[]): Promise<void> {
    const dir = this.dir(name);
    if (await this.sys.fs.exists(path.join(dir, 'cgroup.kill'))) {
      await writeControl(this.sys, dir, 'cgroup.kill', '1', 'cgroup.kill');
      return;
    }
    let frozen = false;
    try {
      await this.freeze(name);
      frozen = true;
    } catch {
      // kill anyway; the next round tries again
    }
    for (const pid of frozen ? await this.pids(name) : pids) this.sys.kill(pid, 'SIGKILL');
    if (frozen) await this.thaw(name);
  }

  async usage(name: string): Promise<CgroupUsage> {
    const dir = this.dir(name);
    const cpuStat = parseKeyed((await readControl(this.sys, dir, 'cpu.stat')) ?? '');
    const usec = cpuStat.get('usage_usec');
    return dropUndefined({
      memoryBytes: await readNumber(this.sys, dir, 'memory.current'),
      memoryPeakBytes: await readNumber(this.sys, dir, 'memory.peak'),
      swapBytes: await readNumber(this.sys, dir, 'memory.swap.current'),
      cpuTimeNs: usec !== undefined && Number.isFinite(Number(usec)) ? Number(usec) * 1000 : undefined,
      processes: await readNumber(this.sys, dir, 'pids.current'),
    });
  }

  async stats(name: string): Promise<CgroupStats> {
    const dir = this.dir(name);
    const read = (file: string) => readControl(this.sys, dir, file).catch(() => undefined);
    const [cpuStat, memStat, current, max, swap, procs] = await Promise.all([
      read('cpu.stat'),
      read('memory.stat'),
      read('memory.current'),
      read('memory.max'),
      read('memory.swap.current'),
      read('pids.current'),
    ]);
    const num = (v: string | undefined) => (v === undefined || v === '' || v === 'max' || !Number.isFinite(Number(v)) ? undefined : Number(v));
    const cs = parseKeyed(cpuStat ?? '');
    const user = num(cs.get('user_usec'));
    const system = num(cs.get('system_usec'));
    const stat = parseKeyed(memStat ?? '');
    const memory: Record<string, number> = {};
    for (const [key, from] of V2_MEMORY_KEYS) if (stat.has(from)) memory[key] = num(stat.get(from)) ?? 0;
    return dropUndefined({
      // v2 keeps no time per CPU: the totals count as CPU 0.
      cpu: user !== undefined || system !== undefined ? [{ cpu: 0, user: (user ?? 0) / 1e6, system: (system ?? 0) / 1e6 }] : [],
      memory,
      memoryBytes: num(current),
      memoryLimitBytes: num(max),
      swapBytes: num(swap),
      processes: num(procs),
    });
  }
}

/** memory.stat's v2 keys by the (v1) names CgroupStats uses. */
const V2_MEMORY_KEYS: ReadonlyArray<[string, string]> = [
  ['active_anon', 'active_anon'],
  ['active_file', 'active_file'],
  ['inactive_anon', 'inactive_anon'],
  ['inactive_file', 'inactive_file'],
  ['unevictable', 'unevictable'],
  ['writeback', 'file_writeback'],
  ['dirty', 'file_dirty'],
  ['mapped', 'file_mapped'],
  ['rss', 'anon'],
  ['shmem', 'shmem'],
  ['cache', 'file'],
];
