import fs from 'node:fs';
import os from 'node:os';
import { defaultPaths, type Paths } from '../state/paths.js';
import { lxcfsFiles, lxcfsState, type LxcfsState } from './lxcfs.js';

/**
 * What the host kernel offers tslxc, from /proc and sysfs (cheap, no systeminformation): the
 * cgroup layout, filesystems, idmapped mounts, lxcfs.
 */
export interface HostFeatures {
  cgroup: { version: 'v1' | 'v2' | 'none'; hybrid: boolean; controllers: string[] };
  overlay: boolean;
  btrfs: boolean;
  /** mount_setattr(MOUNT_ATTR_IDMAP): kernel 5.12 or later */
  idmappedMounts: boolean;
  /** tslxc's own lxcfs (lib/host/lxcfs.ts) */
  lxcfs: { running: boolean; state: LxcfsState; path: string };
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function hostFeatures(p: Paths = defaultPaths()): HostFeatures {
  const filesystems = read('/proc/filesystems');
  const hasFs = (name: string) => new RegExp(`\\t${name}$`, 'm').test(filesystems) || fs.existsSync(`/sys/module/${name}`);
  const [maj = 0, min = 0] = os.release().split(/[.-]/).map(Number);
  const lxcfs = lxcfsState(p);
  return {
    cgroup: cgroupLayout(),
    overlay: hasFs('overlay'),
    btrfs: hasFs('btrfs'),
    idmappedMounts: maj > 5 || (maj === 5 && min >= 12),
    lxcfs: { running: lxcfs === 'running', state: lxcfs, path: lxcfsFiles(p).dir },
  };
}

function cgroupLayout(): HostFeatures['cgroup'] {
  const mounts = read('/proc/self/mounts')
    .split('\n')
    .map((l) => l.split(' '));
  const v1 = mounts.filter((m) => m[2] === 'cgroup');
  const v2 = mounts.find((m) => m[2] === 'cgroup2');
  if (v1.length > 0) {
    const enabled = new Set(
      read('/proc/cgroups')
        .split('\n')
        .filter((l) => /^\w/.test(l) && l.trim().endsWith('1'))
        .map((l) => l.split('\t')[0]!),
    );
    const controllers = v1.flatMap((m) => (m[3] ?? '').split(',').filter((o) => enabled.has(o) || o.startsWith('name=')));
    return { version: 'v1', hybrid: !!v2, controllers: [...new Set(controllers)].sort() };
  }
  if (v2) return { version: 'v2', hybrid: false, controllers: read(`${v2[1]}/cgroup.controllers`).trim().split(/\s+/).filter(Boolean) };
  return { version: 'none', hybrid: false, controllers: [] };
}
