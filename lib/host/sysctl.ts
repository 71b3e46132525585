import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { hostFeatures } from './features.js';

/**
 * The host limits containers share (LXD's "server settings for a production setup", checked for
 * what they mean under tslxc): `tslxc host` shows them, `admin init` raises them, and every start
 * warns (native/hostlimits.c) before a container would hit one.
 *
 * Every container's user namespace is owned by host root, so what systemd inside takes (inotify
 * instances and watches) counts against root's limits on the host: at Debian's 128 instances the
 * 15th Debian container dies at boot.
 */

/** How a limit bears on tslxc's containers. */
export type LimitScope =
  /** one count for all containers (and the host): it decides how many fit */
  | 'shared'
  /** per process or per instance, but not namespaced: a workload inside cannot raise it */
  | 'per-process'
  /** LXD recommends it, tslxc does not need it (the reason says why) */
  | 'not-needed';

export interface HostLimit {
  key: string;
  /** LXD's recommended value */
  recommended: number;
  scope: LimitScope;
  /** one line: why it matters here */
  reason: string;
  /** false where the key does not apply to this host (then it is neither checked nor raised) */
  applies?: () => boolean;
}

/** What a Debian (systemd) container takes, measured on an idle container: 9 inotify instances (systemd 5, logind, resolved, dbus, agetty), 29 watches, its console pty. */
export const SYSTEMD_CONTAINER_NEED = { inotifyInstances: 9, inotifyWatches: 32, ptys: 1 };

export const HOST_LIMITS: readonly HostLimit[] = [
  {
    key: 'fs.inotify.max_user_instances',
    recommended: 1048576,
    scope: 'shared',
    reason: `a systemd container opens about ${SYSTEMD_CONTAINER_NEED.inotifyInstances}, all counted as host root's: Debian's 128 is room for about 14, fewer beside the host's own users`,
  },
  {
    key: 'fs.inotify.max_user_watches',
    recommended: 1048576,
    scope: 'shared',
    reason: `about ${SYSTEMD_CONTAINER_NEED.inotifyWatches} per idle systemd container (far more with file-watching workloads), all counted as host root's`,
  },
  {
    key: 'fs.inotify.max_queued_events',
    recommended: 1048576,
    scope: 'per-process',
    reason: 'events an inotify instance queues before it drops them: busy containers overflow the default',
  },
  {
    key: 'kernel.pty.max',
    recommended: 65536,
    scope: 'shared',
    reason: 'every console, exec -t, shell and gateway session is a pty; containers get max minus kernel.pty.reserve of them',
  },
  {
    key: 'kernel.keys.maxkeys',
    recommended: 2000,
    scope: 'shared',
    reason:
      'keys per host uid, and containers that are not idmap-isolated share one; used only where security.syscalls.allow lets keyctl through (Docker inside)',
  },
  { key: 'kernel.keys.maxbytes', recommended: 2000000, scope: 'shared', reason: 'key bytes per host uid, as kernel.keys.maxkeys' },
  {
    key: 'net.ipv4.neigh.default.gc_thresh3',
    recommended: 8192,
    scope: 'shared',
    reason: "the host's ARP table holds an entry per container on a bridge; past it containers lose their network",
  },
  { key: 'net.ipv6.neigh.default.gc_thresh3', recommended: 8192, scope: 'shared', reason: 'the same for IPv6 neighbours' },
  { key: 'fs.aio-max-nr', recommended: 524288, scope: 'shared', reason: 'asynchronous I/O requests of the whole host: databases in containers use them' },
  {
    key: 'vm.max_map_count',
    recommended: 262144,
    scope: 'per-process',
    reason: 'memory maps per process, not namespaced: workloads inside (JVMs, Elasticsearch) cannot raise it themselves',
  },
  {
    key: 'net.core.bpf_jit_limit',
    recommended: 1000000000,
    scope: 'shared',
    reason: "on cgroup v2 every container's device list is an eBPF program; before kernel 5.15 the JIT limit caps how many",
    applies: () => hostFeatures().cgroup.version === 'v2' && kernelBefore(5, 15),
  },
  {
    key: 'kernel.dmesg_restrict',
    recommended: 1,
    scope: 'not-needed',
    reason: 'containers cannot read the kernel log anyway (seccomp refuses syslog(2), /dev/kmsg is not in the device list); it would only restrict host users',
  },
];

function kernelBefore(major: number, minor: number): boolean {
  const [maj = 0, min = 0] = os.release().split(/[.-]/).map(Number);
  return maj < major || (maj === major && min < minor);
}

/**
 * Where sysctls are read and written, and where admin init persists them. Tests (and only tests)
 * point these at fake trees with TSLXC_TEST_SYSCTL_ROOT (a fake /proc/sys, read by the helper's
 * start check too) and TSLXC_TEST_SYSCTL_D (a fake /etc/sysctl.d), so no test changes the host.
 */
export const sysctlRoot = (env: NodeJS.ProcessEnv = process.env) => env.TSLXC_TEST_SYSCTL_ROOT || '/proc/sys';
export const sysctlDir = (env: NodeJS.ProcessEnv = process.env) => env.TSLXC_TEST_SYSCTL_D || '/etc/sysctl.d';
/** After the distribution's files, before 99-sysctl.conf (the admin's own /etc/sysctl.conf wins). */
export const SYSCTL_FILE = '60-tslxc.conf';

const keyPath = (root: string, key: string) => path.join(root, ...key.split('.'));

export function readSysctl(key: string, root = sysctlRoot()): number | undefined {
  try {
    const v = Number(fs.readFileSync(keyPath(root, key), 'utf8').trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface LimitCheck {
  key: string;
  /** undefined: the kernel has no such key */
  current?: number;
  recommended: number;
  /** what is in use where it can be told (inotify from /proc, ptys, keys, aio, ARP entries) */
  inUse?: number;
  scope: LimitScope;
  /** low: below the recommendation; n/a: does not apply here or not needed by tslxc */
  status: 'ok' | 'low' | 'n/a' | 'missing';
  reason: string;
}

/** Each limit: current, recommended, in use, and whether it is low. */
export function checkHostLimits(opts: { root?: string; usage?: boolean } = {}): LimitCheck[] {
  const root = opts.root ?? sysctlRoot();
  const usage = opts.usage === false ? {} : limitUsage(root);
  return HOST_LIMITS.map((l) => {
    const current = readSysctl(l.key, root);
    const applies = l.scope !== 'not-needed' && (l.applies?.() ?? true);
    const status = current === undefined ? 'missing' : !applies ? 'n/a' : current < l.recommended ? 'low' : 'ok';
    return { key: l.key, current, recommended: l.recommended, inUse: usage[l.key], scope: l.scope, status, reason: l.reason };
  });
}

/**
 * What is in use, where the kernel tells: a /proc scan for inotify (fine for `tslxc host`, too
 * slow for a start: the start's check probes the kernel instead), the pty and aio counts, the
 * busiest non-root key user, the host's IPv4 neighbours.
 */
function limitUsage(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const inotify = scanInotify();
  if (inotify) {
    out['fs.inotify.max_user_instances'] = inotify.instances;
    out['fs.inotify.max_user_watches'] = inotify.watches;
  }
  const nr = readSysctl('kernel.pty.nr', root);
  if (nr !== undefined) out['kernel.pty.max'] = nr;
  const aio = readSysctl('fs.aio-nr', root);
  if (aio !== undefined) out['fs.aio-max-nr'] = aio;
  try {
    // "uid: usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes"; root has its own limits.
    let keys = 0;
    let bytes = 0;
    for (const line of fs.readFileSync('/proc/key-users', 'utf8').split('\n')) {
      const m = /^\s*(\d+):\s+\d+\s+\d+\/\d+\s+(\d+)\/\d+\s+(\d+)\/\d+/.exec(line);
      if (m && m[1] !== '0') {
        keys = Math.max(keys, Number(m[2]));
        bytes = Math.max(bytes, Number(m[3]));
      }
    }
    out['kernel.keys.maxkeys'] = keys;
    out['kernel.keys.maxbytes'] = bytes;
  } catch {
    /* no keys support */
  }
  try {
    out['net.ipv4.neigh.default.gc_thresh3'] = fs.readFileSync('/proc/net/arp', 'utf8').trim().split('\n').length - 1;
  } catch {
    /* no IPv4 */
  }
  return out;
}

/**
 * inotify instances and watches charged to host root: those of root's processes and of every
 * process in another user namespace (containers' namespaces are root's), from /proc/PID/fd(info).
 */
export function scanInotify(): { instances: number; watches: number } | undefined {
  let hostNs: string;
  try {
    hostNs = fs.readlinkSync('/proc/self/ns/user');
  } catch {
    return undefined;
  }
  let instances = 0;
  let watches = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const own = fs.statSync(`/proc/${pid}`).uid === 0 || fs.readlinkSync(`/proc/${pid}/ns/user`) !== hostNs;
      if (!own) continue;
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:inotify') continue;
          instances++;
          watches += fs
            .readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('inotify wd:')).length;
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* the process ended, or is not ours to read */
    }
  }
  return { instances, watches };
}

export interface RaiseResult {
  /** keys written, from what to what */
  raised: Array<{ key: string; from?: number; to: number }>;
  /** keys the kernel refused or lacks, and why */
  failed: Array<{ key: string; why: string }>;
  /** the sysctl.d file written */
  file: string;
}

/**
 * Raise every limit that applies to at least LXD's value, live (/proc/sys) and for the next boots
 * (sysctl.d). A value the admin set higher is kept as it is: nothing is lowered.
 */
export function raiseHostLimits(opts: { root?: string; dir?: string } = {}): RaiseResult {
  const root = opts.root ?? sysctlRoot();
  const dir = opts.dir ?? sysctlDir();
  const result: RaiseResult = { raised: [], failed: [], file: path.join(dir, SYSCTL_FILE) };
  const lines = [
    '# Written by "tslxc admin init": the host limits all containers share, raised to LXD\'s',
    '# production-setup values (higher values already set were kept). See "tslxc host".',
  ];
  for (const c of checkHostLimits({ root, usage: false })) {
    if (c.status !== 'low' && c.status !== 'ok') continue;
    const target = Math.max(c.current ?? 0, c.recommended);
    lines.push(`${c.key} = ${target}`);
    if (c.status === 'ok') continue;
    try {
      fs.writeFileSync(keyPath(root, c.key), `${target}\n`);
      result.raised.push({ key: c.key, from: c.current, to: target });
    } catch (err) {
      result.failed.push({ key: c.key, why: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(result.file, `${lines.join('\n')}\n`, 0o644);
  return result;
}

/** The helper's --need options for a container: a systemd one (its stop signal says so) takes inotify instances and watches; every one has a console pty. */
export function hostNeedArgs(stopSignal: string): string[] {
  const n = stopSignal === 'SIGRTMIN+3' ? SYSTEMD_CONTAINER_NEED : { inotifyInstances: 0, inotifyWatches: 0, ptys: 1 };
  return ['--need', `inotify-instances=${n.inotifyInstances}`, '--need', `inotify-watches=${n.inotifyWatches}`, '--need', `ptys=${n.ptys}`];
}
