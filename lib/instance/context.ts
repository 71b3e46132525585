import fs from 'node:fs';
import { containersDir, defaultPaths, locksDir, type Paths } from '../state/paths.js';
import path from 'node:path';
import { openCgroups } from '../cgroup/index.js';
import { realSys } from '../cgroup/sys.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { lockFile, sweepLocks, withLock } from '../util/lock.js';
import { deviceRuleText, type DeviceRule } from '../cgroup/devices.js';
import { helperError, runHelper } from './helper.js';
import type { StartRecorder } from './plan.js';

/** The file of a container's lock (util/lock.ts). */
export const instanceLockFile = (p: Paths, name: string) => lockFile(locksDir(p), `ct-${name}`);

/**
 * Removes the lock files of containers that do not exist: a copy or launch killed before its
 * container appeared left one (a file no process holds is no lock, but nothing else would remove it).
 */
export function sweepInstanceLocks(p: Paths): string[] {
  return sweepLocks(locksDir(p), (key) => key.startsWith('ct-') && !fs.existsSync(path.join(containersDir(p), key.slice('ct-'.length))));
}

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
