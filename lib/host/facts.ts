import fs from 'node:fs';
import os from 'node:os';
import { parseCpuList } from '../util/units.js';

/**
 * The host figures that limits are checked against. Cheap and synchronous (os module and sysfs),
 * because every `config set` needs them; the full report (lib/admin/report.ts) uses
 * systeminformation and is loaded only by `tslxc host`.
 */
export interface HostFacts {
  /** online CPUs, e.g. [0, 1] */
  cpus: number[];
  memoryBytes: number;
}

export function hostFacts(): HostFacts {
  return { cpus: onlineCpus(), memoryBytes: os.totalmem() };
}

/** The kernel's list of online CPUs (sysfs), falling back to os.cpus() numbering. */
export function onlineCpus(): number[] {
  try {
    return parseCpuList(fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim());
  } catch {
    return os.cpus().map((_c, i) => i);
  }
}
