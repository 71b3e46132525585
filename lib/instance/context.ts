import { defaultPaths, locksDir, type Paths } from '../state/paths.js';
import { openCgroups } from '../cgroup/index.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { withLock } from '../util/lock.js';

/**
 * What every instance operation needs: where state lives and the host's cgroup driver (detected
 * once, lazily, because `list` of stopped containers should not pay for it).
 */
export class Context {
  private driver?: Promise<CgroupDriver>;

  constructor(readonly paths: Paths = defaultPaths()) {}

  cgroups(): Promise<CgroupDriver> {
    this.driver ??= Promise.resolve(openCgroups({ prefix: this.paths.cgroupPrefix }));
    return this.driver;
  }

  /** Serialise operations on one container across processes. */
  withInstanceLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withLock(locksDir(this.paths), `ct-${name}`, fn, { purpose: `container "${name}"`, timeoutMs: 5 * 60_000 });
  }
}
