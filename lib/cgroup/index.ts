import type { DriverOptions, Timeouts } from './base.js';
import { detectLayout } from './layout.js';
import type { CgroupLayout } from './layout.js';
import type { CgroupSys } from './sys.js';
import { realSys } from './sys.js';
import type { CgroupDriver } from './types.js';
import { CgroupV1 } from './v1.js';
import { CgroupV2 } from './v2.js';

export type { CgroupDriver, CgroupLimits, CgroupUsage, FreezeState } from './types.js';
export type { CgroupLayout, V1Hierarchy, UnifiedHierarchy } from './layout.js';
export type { CgroupFs, CgroupSys } from './sys.js';
export type { Timeouts } from './base.js';
export { detectLayout, parseCgroupMounts } from './layout.js';
export { DEFAULT_DEVICE_RULES } from './devices.js';
export { CgroupV1, weightToShares } from './v1.js';
export { CgroupV2, ATTACH_LEAF } from './v2.js';

export const DEFAULT_CGROUP_PREFIX = 'tslxc';

export interface OpenOptions {
  /** levels under each hierarchy's top that hold the containers; default "tslxc" (tests: their own) */
  prefix?: string;
  /** mountinfo text; default /proc/self/mountinfo */
  mountinfo?: string;
  /** prepended to every mount point (a fake tree in tests) */
  root?: string;
  /** an already detected layout (skips mountinfo) */
  layout?: CgroupLayout;
  /** kernel access (fs, kill, clock); default the real one */
  sys?: CgroupSys;
  timeouts?: Partial<Timeouts>;
  onWarning?: (message: string) => void;
  /** v2: how the device allow list is attached (see DriverOptions) */
  attachDevices?: DriverOptions['attachDevices'];
}

/** Detect the host's cgroup layout and return the driver for it. */
export async function openCgroups(opts: OpenOptions = {}): Promise<CgroupDriver> {
  const sys = opts.sys ?? realSys;
  const layout = opts.layout ?? (await detectLayout({ mountinfo: opts.mountinfo, root: opts.root, fs: sys.fs }));
  const dopts: DriverOptions = {
    layout,
    prefix: opts.prefix ?? DEFAULT_CGROUP_PREFIX,
    sys,
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    ...(opts.attachDevices ? { attachDevices: opts.attachDevices } : {}),
  };
  return layout.version === 'v1' ? new CgroupV1(dopts) : new CgroupV2(dopts);
}
