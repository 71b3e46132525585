import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CgroupSys } from '../cgroup/sys.js';
import { deviceRuleText, type DeviceRule } from '../cgroup/devices.js';
import { containerDir, startPlansDir, type Paths } from '../state/paths.js';
import { validateInstanceName } from '../util/names.js';
import { helperPath } from '../state/helper.js';
import { lxcfsDir } from '../host/features.js';
import type { NetworkReplay } from '../network/replay.js';

/**
 * Start plans: `tslxc start NAME` without node.
 *
 * Starting a container is mostly the same host work every time: the same cgroup dirs made and
 * written, the same files in the run dir, the same helper arguments. The TypeScript start works all
 * of it out from the config, the profiles and the pools (tens of ms, plus node's own start-up).
 * After a start that went well, this module writes down what it did (a plan) and what it read to
 * decide it (every state file consulted, with its inode, size and mtime; the environment it ran
 * with). The next `tslxc start NAME` goes from bin/tslxc straight to the helper (native/cli.c),
 * which checks that nothing it relied on changed, replays the cgroup work and starts the
 * container (native/plan.c). Anything that does not match exactly (a config edit, a profile edit,
 * another pool, a rebuilt tslxc, a leftover of a crash) sends the command to node as before,
 * which starts the container the long way and writes a fresh plan. Plans live in the run dir:
 * a host reboot forgets them.
 *
 * Only starts that touch nothing outside the container's own cgroups and network files get a
 * plan: nics on managed networks are replayed (network/replay.ts: the bridge and dnsmasq are
 * checked, the container's dnsmasq files and hooks rewritten, dnsmasq told), proxies (nft rules
 * shared by every container) and unix devices (a grant on the shared cgroup prefix) are not; nor
 * is a start that made a cgroup prefix level or cleaned up after a crash.
 *
 * The format is a list of NUL-terminated strings, an operation name then its fixed operands:
 *   tslxc-start-plan-1
 *   lock FILE                 a lock (native/lock.c's protocol): the container's, then the networks'
 *   env NAME VALUE            the variable is VALUE ("" = unset or empty)
 *   same PATH DEV INO SIZE MTIME_NS
 *   inode PATH DEV INO        (a dir: only which one it is)
 *   absent PATH
 *   text PATH DATA            the file holds exactly DATA
 *   link NAME                 the network interface exists
 *   dnsmasq PIDFILE CONF      a live dnsmasq runs with --conf-file=CONF
 *   nolease LEASES IP N HWADDR...   no DHCP lease gives IP to a machine other than these
 *   rundir DIR                the container's run dir: no pid file may be in it
 *   mkdir PATH | write PATH DATA | chown PATH UID GID | devices DIR N RULE...   (cgroups)
 *   file PATH MODE DATA       (files under the run dir root: the container's, its dnsmasq entries)
 *   hup PIDFILE CONF          SIGHUP to that dnsmasq (it re-reads its hosts dirs)
 *   unlock                    release the last lock taken
 *   lastused PATH
 *   start N ARG...            the helper's start arguments
 *   end
 */
export const PLAN_MAGIC = 'tslxc-start-plan-1';

/** Variables that change what a start does. */
const PLAN_ENV = ['TSLXC_DIR', 'TSLXC_RUN_DIR', 'TSLXC_CGROUP_PREFIX', 'TSLXC_IDMAPPED_MOUNTS', 'TSLXC_LXCFS_DIR', 'TSLXC_HELPER'];

export const startPlanFile = (p: Paths, name: string) => path.join(startPlansDir(p), validateInstanceName(name));
export const lastUsedFile = (p: Paths, name: string) => path.join(containerDir(p, name), 'last-used');

export function dropStartPlan(p: Paths, name: string): void {
  fs.rmSync(startPlanFile(p, name), { force: true });
}

/**
 * Watches one start: the cgroup writes it makes (through a wrapped CgroupSys) and the state files
 * it reads (node's sync fs calls, hooked while the start runs; all of tslxc reads its state
 * through them).
 */
export class StartRecorder {
  readonly cgroupOps: string[][] = [];
  /** why this start cannot be replayed; undefined: it can */
  unfit?: string;
  /** state paths read, and how: a dir that was listed counts whole, one only looked at by inode */
  readonly reads = new Map<string, 'content' | 'inode'>();

  constructor(private readonly stateDir: string) {}

  refuse(reason: string): void {
    this.unfit ??= reason;
  }

  wrapSys(sys: CgroupSys): CgroupSys {
    const f = sys.fs;
    const ops = this.cgroupOps;
    return {
      ...sys,
      fs: {
        ...f,
        mkdir: async (p) => {
          await f.mkdir(p);
          ops.push(['mkdir', p]);
        },
        writeFile: async (p, data) => {
          await f.writeFile(p, data);
          ops.push(['write', p, data]);
        },
        chown: f.chown && (async (p, uid, gid) => {
          await f.chown!(p, uid, gid);
          ops.push(['chown', p, String(uid), String(gid)]);
        }),
        rename: async (a, b) => {
          this.refuse('a cgroup level was made');
          await f.rename(a, b);
        },
        rmdir: async (p) => {
          this.refuse('stale cgroups were removed');
          await f.rmdir(p);
        },
      },
    };
  }

  wrapDevices(attach: (dir: string, rules: readonly DeviceRule[]) => Promise<void>) {
    return async (dir: string, rules: readonly DeviceRule[]) => {
      await attach(dir, rules);
      this.cgroupOps.push(['devices', dir, String(rules.length), ...rules.map(deviceRuleText)]);
    };
  }

  /**
   * Run fn (the start) with node's sync reads noted. A read is this start's only while no other
   * start runs in the process: with two at once (lab up starts several in parallel) a read cannot
   * be told apart, so neither writes a plan (their next start from the CLI will). Telling them
   * apart took an AsyncLocalStorage, whose promise hooks slow every start (and so every launch
   * command) noticeably, for plans that lab up itself never replays.
   */
  async watch<T>(fn: () => Promise<T>): Promise<T> {
    installReadHooks();
    running.add(this);
    if (running.size > 1) for (const r of running) r.refuse('another start ran beside it in this process');
    solo = running.size === 1 ? this : undefined;
    try {
      return await fn();
    } finally {
      running.delete(this);
      solo = running.size === 1 ? [...running][0] : undefined;
      removeReadHooks();
    }
  }

  noteRead(p: fs.PathLike | number, how: 'content' | 'inode'): void {
    if (typeof p !== 'string') return;
    const abs = path.resolve(p);
    if (!abs.startsWith(`${this.stateDir}/`)) return;
    if (how === 'content' || !this.reads.has(abs)) this.reads.set(abs, how);
  }

  /** The checks: every state path read, as it is now (after the start wrote what it writes). */
  private checks(): string[][] {
    const out: string[][] = [];
    for (const [p, how] of [...this.reads].sort()) out.push(statCheck(p, how));
    // lxcfs (read from mountinfo, not a state file): its mount point is another inode while it runs.
    out.push(statCheck(lxcfsDir(), 'inode'));
    // tslxc itself: a rebuilt helper or CLI may start containers differently.
    for (const p of [helperPath(), fileURLToPath(import.meta.url)]) out.push(statCheck(p, 'content'));
    return out;
  }

  /** Write the plan (atomically), or remove a stale one when this start cannot be replayed. */
  write(p: Paths, name: string, plan: { lockFile: string; runDir: string; cgroupDirs: string[]; runFiles: string[]; helperArgs: string[]; network?: NetworkReplay }): void {
    const file = startPlanFile(p, name);
    for (const k of PLAN_ENV) {
      const v = process.env[k];
      if (v && k.endsWith('DIR') && !path.isAbsolute(v)) this.refuse(`${k} is a relative path`);
    }
    const outside = this.cgroupOps.find((op) => op[0] === 'mkdir' && !plan.cgroupDirs.some((d) => op[1] === d || op[1].startsWith(`${d}/`)));
    if (outside) this.refuse(`cgroup ${outside[1]} is not the container's own`);
    if (plan.helperArgs[0] !== 'start') this.refuse('not a start');
    const net = plan.network;
    if (!net) this.refuse('its network devices are not replayable');
    if (this.unfit) {
      dropStartPlan(p, name);
      return;
    }
    // The lock first: the checks then see what the TypeScript start would see under it.
    // Locks in the TypeScript start's order: the container's, then (nics) the networks'.
    const nics = net!.files.length > 0;
    const ops: string[][] = [[PLAN_MAGIC], ['lock', plan.lockFile], ...(nics ? [['lock', net!.lockFile]] : [])];
    for (const k of PLAN_ENV) ops.push(['env', k, process.env[k] ?? '']);
    ops.push(...this.checks(), ...net!.checks);
    ops.push(['rundir', plan.runDir]);
    ops.push(...this.cgroupOps);
    for (const f of [...plan.runFiles, ...net!.files]) {
      let data: string;
      try {
        data = fs.readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      if (data.includes('\0')) return dropStartPlan(p, name);
      ops.push(['file', f, (fs.statSync(f).mode & 0o7777).toString(8), data]);
    }
    if (nics) ops.push(...net!.signals, ['unlock']);
    ops.push(['lastused', lastUsedFile(p, name)]);
    const args = plan.helperArgs.slice(1);
    ops.push(['start', String(args.length), ...args], ['end']);
    if (ops.some((op) => op.some((s) => s.includes('\0')))) return dropStartPlan(p, name);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, ops.map((op) => op.map((s) => `${s}\0`).join('')).join(''), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
}

function statCheck(p: string, how: 'content' | 'inode'): string[] {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(p, { bigint: true });
  } catch {
    return ['absent', p];
  }
  if (how === 'inode') return ['inode', p, String(st.dev), String(st.ino)];
  return ['same', p, String(st.dev), String(st.ino), String(st.size), String(st.mtimeNs)];
}

/** The starts being watched in this process, and the one whose reads are noted (when it is alone). */
const running = new Set<StartRecorder>();
let solo: StartRecorder | undefined;
let hookUsers = 0;
let unhook: (() => void) | undefined;

/** Wrap node's sync fs reads (all of tslxc reads its state through them) to tell the watching recorder. */
function installReadHooks(): void {
  if (hookUsers++ > 0) return;
  const saved = { readFileSync: fs.readFileSync, existsSync: fs.existsSync, statSync: fs.statSync, lstatSync: fs.lstatSync, readdirSync: fs.readdirSync };
  const wrap = <F extends (...a: never[]) => unknown>(orig: F, how: 'content' | 'stat'): F =>
    ((...a: Parameters<F>) => {
      const rec = solo;
      const p = a[0] as unknown as fs.PathLike;
      if (rec && how === 'stat') {
        // A file's metadata may decide things (its size, its owner): count it whole; a dir
        // looked at only says which dir it is.
        let isDir = false;
        try {
          isDir = saved.statSync(p).isDirectory();
        } catch {
          /* absent: recorded as such */
        }
        rec.noteRead(p, isDir ? 'inode' : 'content');
      } else rec?.noteRead(p, 'content');
      return orig(...a);
    }) as F;
  const f = fs as unknown as Record<string, unknown>;
  f.readFileSync = wrap(saved.readFileSync, 'content');
  f.readdirSync = wrap(saved.readdirSync, 'content');
  f.existsSync = wrap(saved.existsSync, 'stat');
  f.statSync = wrap(saved.statSync, 'stat');
  f.lstatSync = wrap(saved.lstatSync, 'stat');
  unhook = () => Object.assign(f, saved);
}

function removeReadHooks(): void {
  if (--hookUsers > 0) return;
  unhook?.();
  unhook = undefined;
}
