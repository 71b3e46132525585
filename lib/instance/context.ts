import { defaultPaths, locksDir, type Paths } from '../state/paths.js';
import path from 'node:path';
import { openCgroups } from '../cgroup/index.js';
import { realSys } from '../cgroup/sys.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { withLock } from '../util/lock.js';
import { deviceRuleText, type DeviceRule } from '../cgroup/devices.js';
import { helperError, runHelper } from './helper.js';
import type { StartRecorder } from './plan.js';

/** The directory util/lock.ts makes while a command holds a container's lock. */
export const instanceLockDir = (p: Paths, name: string) => path.join(locksDir(p), `ct-${name}.lock`);

/** v2: the device allow list as a BPF program on the container's cgroup (the helper's `devices`). */
async function attachDevices(dir: string, rules: readonly DeviceRule[], opts: { replace?: boolean } = {}): Promise<void> {
  const r = await runHelper(['devices', '--cgroup', dir, ...(opts.replace ? ['--replace'] : []), ...rules.flatMap((x) => ['--allow', deviceRuleText(x)])]);
  if (r.code !== 0) throw new Error(helperError(r.stderr));
}

/**
 * What every instance operation needs: where state lives and the host's cgroup driver (detected
 * once, lazily, because `list` of stopped containers should not pay for it).
 */
export class Context {
  private driver?: Promise<CgroupDriver>;

  constructor(readonly paths: Paths = defaultPaths()) {}

  cgroups(): Promise<CgroupDriver> {
    this.driver ??= Promise.resolve(openCgroups({ prefix: this.paths.cgroupPrefix, attachDevices }));
    return this.driver;
  }

  /** The same driver, its cgroup writes noted by a start recorder (plan.ts). */
  async recordingCgroups(rec: StartRecorder): Promise<CgroupDriver> {
    const { layout } = await this.cgroups();
    return openCgroups({ prefix: this.paths.cgroupPrefix, layout, sys: rec.wrapSys(realSys), attachDevices: rec.wrapDevices(attachDevices) });
  }

  /**
   * Serialise changes of device grants (a start with unix devices, a live change of them): on
   * cgroup v1 they change the prefix cgroup all containers share.
   */
  withDevicesLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(locksDir(this.paths), 'cgroup-devices', fn, { purpose: 'the device cgroup prefix', timeoutMs: 60_000 });
  }

  /** Serialise operations on one container across processes. */
  withInstanceLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withLock(locksDir(this.paths), `ct-${name}`, fn, { purpose: `container "${name}"`, timeoutMs: 5 * 60_000 });
  }
}
