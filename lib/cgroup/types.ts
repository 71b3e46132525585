import type { CgroupLayout } from './layout.js';
/**
 * What a container's cgroup driver offers, the same on cgroup v1 (and hybrid) and v2 hosts. The
 * instance code picks no version: it calls openCgroups() and gets one of these.
 */

/**
 * The full desired set of resource limits of a container, already parsed (see config/limits.ts).
 * applyLimits() writes all of them: a field left out means "no limit" and resets the kernel file
 * to its unlimited value, so applying a config twice or after an edit gives the same result.
 */
import type { DeviceRule } from './devices.js';

export interface CgroupLimits {
  /** memory limit in bytes (hard by default) */
  memoryBytes?: number;
  /** swap usable on top of memoryBytes; 0 = no swap; unset = unlimited */
  memorySwapBytes?: number;
  /** apply memoryBytes as a soft limit (reclaim pressure above it) instead of a hard one */
  memorySoft?: boolean;
  /** cpuset: CPUs the container may run on, a kernel list like "0-1,3" */
  cpus?: string;
  /** CFS bandwidth: CPU time allowed per period, both in microseconds */
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  /** relative CPU weight on the v2 scale 1-10000 (default 100); v1 maps it to cpu.shares */
  cpuWeight?: number;
  /** maximum number of tasks (processes and threads) */
  pidsMax?: number;
  /** relative block I/O weight 10-1000 */
  blkioWeight?: number;
}

export interface CgroupUsage {
  memoryBytes?: number;
  memoryPeakBytes?: number;
  swapBytes?: number;
  /** CPU time used, all CPUs, in nanoseconds */
  cpuTimeNs?: number;
  /** tasks counted by the pids controller */
  processes?: number;
}

/**
 * What a scrape of metrics reads of a container's cgroups (LXD's instance metrics): the memory
 * breakdown in the kernel's v1 terms (v2's keys are mapped onto them), CPU time per CPU where the
 * kernel keeps it (v1's cpuacct; v2 has totals only, given as CPU 0, as LXD does).
 */
export interface CgroupStats {
  /** per CPU index: seconds in user and system mode */
  cpu: Array<{ cpu: number; user: number; system: number }>;
  memoryBytes?: number;
  /** the memory limit, undefined when there is none */
  memoryLimitBytes?: number;
  swapBytes?: number;
  /** memory.stat: active_anon, active_file, inactive_anon, inactive_file, unevictable, writeback, dirty, mapped, rss, shmem, cache */
  memory: Record<string, number>;
  processes?: number;
}

export type FreezeState = 'frozen' | 'thawed';

export interface CgroupDriver {
  readonly version: 'v1' | 'v2';
  readonly layout: CgroupLayout;
  /** v1 controllers with a cgroup2 mounted beside them (systemd's hybrid mode) */
  readonly hybrid: boolean;
  /** false on v2: device access needs a BPF program there, which is not done yet */
  readonly devicesEnforced: boolean;
  readonly prefix: string;

  /**
   * Make the container's cgroups, the device list being the defaults plus `devices` (the grants
   * of its unix-char/unix-block devices); returns the host dirs to hand to the native helper (--cgroup).
   */
  create(name: string, devices?: readonly DeviceRule[]): Promise<string[]>;
  /**
   * A running container's grants change from `before` to `after` (hotplug): v1 allows the new
   * ones on its cgroup and every cgroup below (a child's list is a copy taken when it was made)
   * and denies the gone ones (the kernel takes a deny down the subtree); v2 swaps its device
   * program for one with the new list. Defaults are never revoked. v1 changes the shared prefix
   * too: callers hold Context.withDevicesLock around this and around a create with devices.
   */
  changeDevices(name: string, before: readonly DeviceRule[], after: readonly DeviceRule[]): Promise<void>;
  /** The container's cgroup dirs (made or not), for attach and cleanup. */
  dirs(name: string): string[];
  /** Dirs an attached process joins: like dirs(), but a leaf where v2 forbids joining an inner cgroup. */
  attachDirs(name: string): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /**
   * Hand the container's cgroups to its (unprivileged) root, host ids uid:gid: each dir and the
   * files that make a delegated subtree (cgroup.procs, tasks, cgroup.threads,
   * cgroup.subtree_control, cgroup.clone_children), so systemd inside can make and fill
   * sub-cgroups. Limits stay root's.
   */
  delegate(name: string, uid: number, gid: number): Promise<void>;
  applyLimits(name: string, limits: CgroupLimits): Promise<void>;
  /** The container's cgroup statistics for metrics; the files are read concurrently. */
  stats(name: string): Promise<CgroupStats>;
  freeze(name: string): Promise<void>;
  thaw(name: string): Promise<void>;
  state(name: string): Promise<FreezeState>;
  /** Where state() looks, for the native exec path: the file, and the line it holds while thawed. */
  thawedMark(name: string): { file: string; line: string };
  /** PIDs (thread-group leaders) anywhere in the container's subtree, sorted. */
  pids(name: string): Promise<number[]>;
  /** SIGKILL everything in the subtree and wait until it is empty (bounded). */
  killAll(name: string): Promise<void>;
  /** Kill what is left and remove the subtree in every hierarchy. Missing dirs are fine. */
  remove(name: string): Promise<void>;
  usage(name: string): Promise<CgroupUsage>;
  /** Remove the prefix dirs if no container is left under them (tests; uninstall). */
  removePrefix(): Promise<void>;
}
