import fsp from 'node:fs/promises';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { CgroupFs } from './sys.js';
import { nodeCgroupFs } from './sys.js';

/**
 * Which cgroup hierarchies the host has, read from /proc/self/mountinfo. Hosts come in three
 * shapes: v2 unified (cgroup2 at /sys/fs/cgroup, most of today's distributions), v1 with a
 * cgroup2 beside it (systemd's "hybrid", as on the test machine: /sys/fs/cgroup/unified holds
 * no controllers), and plain v1.
 */

export interface V1Hierarchy {
  /** where it is mounted (rebased under `root` when one is given) */
  mountPoint: string;
  /** the mount's root within the hierarchy ("/" unless bind-mounted from a subtree) */
  root: string;
  /** kernel controllers co-mounted here, e.g. ["cpu", "cpuacct"]; empty for a named hierarchy */
  controllers: string[];
  /** the name= option, e.g. "systemd" */
  name?: string;
}

export interface UnifiedHierarchy {
  mountPoint: string;
  root: string;
  /** controllers available at the mount's top (its cgroup.controllers) */
  controllers: string[];
}

export interface CgroupLayout {
  version: 'v1' | 'v2';
  hybrid: boolean;
  /** v1 hierarchies in mountinfo order, one per distinct set of controllers/name */
  v1: V1Hierarchy[];
  unified?: UnifiedHierarchy;
}

export interface CgroupMount {
  fstype: 'cgroup' | 'cgroup2';
  mountPoint: string;
  root: string;
  superOptions: string[];
}

/** The v1 controllers the kernel may offer; any other super option (rw, xattr, ...) is not one. */
const V1_CONTROLLERS = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'blkio',
  'perf_event',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
  'debug',
]);

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * The cgroup mounts in mountinfo text. Line format (proc(5)):
 * `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`.
 */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 4) continue;
    const fstype = fields[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    mounts.push({
      fstype,
      root: unescapeMountinfo(fields[3]!),
      mountPoint: unescapeMountinfo(fields[4]!),
      superOptions: fields[sep + 3]!.split(','),
    });
  }
  return mounts;
}

export interface DetectOptions {
  /** mountinfo text; default: /proc/self/mountinfo */
  mountinfo?: string;
  /** prepended to every mount point, like a chroot: tests point it at a fake tree in a temp dir */
  root?: string;
  fs?: CgroupFs;
}

export async function detectLayout(opts: DetectOptions = {}): Promise<CgroupLayout> {
  const text = opts.mountinfo ?? (await fsp.readFile('/proc/self/mountinfo', 'utf8'));
  const fs = opts.fs ?? nodeCgroupFs;
  const rebase = (p: string) => (opts.root ? path.join(opts.root, p) : p);

  const v1: V1Hierarchy[] = [];
  const seen = new Set<string>();
  let unified: UnifiedHierarchy | undefined;
  for (const m of parseCgroupMounts(text)) {
    if (m.fstype === 'cgroup2') {
      // Several cgroup2 mounts are one and the same hierarchy; the first one will do.
      unified ??= { mountPoint: rebase(m.mountPoint), root: m.root, controllers: [] };
      continue;
    }
    const controllers = m.superOptions.filter((o) => V1_CONTROLLERS.has(o)).sort();
    const name = m.superOptions.find((o) => o.startsWith('name='))?.slice('name='.length);
    if (controllers.length === 0 && !name) continue;
    // A hierarchy mounted twice (a bind mount) is still one hierarchy: keep its first mount.
    const key = [...controllers, name ? `name=${name}` : ''].join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    v1.push({ mountPoint: rebase(m.mountPoint), root: m.root, controllers, ...(name ? { name } : {}) });
  }

  if (unified) {
    try {
      unified.controllers = (await fs.readFile(path.join(unified.mountPoint, 'cgroup.controllers'))).trim().split(/\s+/).filter(Boolean);
    } catch {
      unified.controllers = [];
    }
  }

  const hasV1Controllers = v1.some((h) => h.controllers.length > 0);
  if (hasV1Controllers) return { version: 'v1', hybrid: unified !== undefined, v1, ...(unified ? { unified } : {}) };
  if (unified) return { version: 'v2', hybrid: false, v1: [], unified };
  throw new TslxcError(
    'No cgroup hierarchy found',
    'neither cgroup v1 controllers nor a cgroup2 file system is mounted',
    'mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)',
  );
}

/** The v1 hierarchy holding a controller, if the host mounts it. */
export function v1HierarchyOf(layout: CgroupLayout, controller: string): V1Hierarchy | undefined {
  return layout.v1.find((h) => h.controllers.includes(controller));
}
