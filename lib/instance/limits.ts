import os from 'node:os';
import { onlineCpus } from '../host/facts.js';
import type { CgroupDriver } from '../cgroup/types.js';
import { limitsFromConfig } from '../config/limits.js';

/** The host's online CPUs, from sysfs (the kernel's list, e.g. "0-1"). */
export function hostCpus(): number[] {
  return onlineCpus();
}

/** Turn a container's expanded config into cgroup limits and write them (all of them: unset = unlimited). */
export async function applyInstanceLimits(cg: CgroupDriver, name: string, config: Record<string, string>): Promise<void> {
  const limits = limitsFromConfig(config, { hostMemoryBytes: os.totalmem(), hostCpus: hostCpus(), name });
  await cg.applyLimits(name, limits);
}
