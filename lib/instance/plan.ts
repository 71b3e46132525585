import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CgroupSys } from '../cgroup/sys.js';
import { deviceRuleText, type DeviceRule } from '../cgroup/devices.js';
import { containerDir, RUN_FILES, startPlansDir, type Paths } from '../state/paths.js';
import { generationFile, GenerationSnapshot, scope } from '../state/generations.js';
import { validateInstanceName } from '../util/names.js';
import { helperPath } from '../state/helper.js';
import { lxcfsFiles } from '../host/lxcfs.js';
import type { NetworkReplay } from '../network/replay.js';
import type { Expanded } from '../profile/expand.js';
import { readRecord } from '../storage/record.js';
import { isVolumeDisk } from '../storage/volume.js';

/**
 * Start plans: `tslxc start NAME` without node.
 *
 * Starting a container is mostly the same host work every time: the same cgroup dirs made and
 * written, the same files in the run dir, the same helper arguments. The TypeScript start works all
 * of it out from the config, the profiles and the pools (tens of ms, plus node's own start-up).
 * After a start that went well, this module writes down what it did (a plan) and what keeps it
 * valid: the generations (state/generations.ts) of the state it was computed from, which the
 * start declares (its container, its profiles, the networks, pools, volumes and image its devices
 * and root use: startDependencies), the builds of tslxc that computed it and will replay it, the
 * environment, and the dynamic facts that are no config (the bridge is up, our dnsmasq runs its
 * config, no DHCP lease took the address, no pid file is in the run dir, the container dir is as
 * the start left it). The next `tslxc start NAME` goes from bin/tslxc straight to the helper
 * (native/cli.c), which compares all of that, replays the cgroup work and starts the container
 * (native/plan.c). Anything that does not match (a config or profile change, a rebuilt tslxc, a
 * leftover of a crash) sends the command to node as before, which starts the container the long
 * way and writes a fresh plan. Plans live in the run dir: a host reboot forgets them.
 *
 * The C side only compares and executes: every rule a check applies (which process is our
 * dnsmasq, which lease line takes an address, which files mean "running") is given here as data.
 *
 * Only starts that touch nothing outside the container's own cgroups and network files get a
 * plan: nics on managed networks are replayed (network/replay.ts: the bridge and dnsmasq are
 * checked, the container's dnsmasq files and hooks rewritten, dnsmasq told), proxies (nft rules
 * shared by every container) and unix devices (a grant on the shared cgroup prefix) are not; nor
 * is a start that made a cgroup prefix level or cleaned up after a crash.
 *
 * The format is a list of NUL-terminated strings, an operation name then its operands:
 *   tslxc-start-plan-2
 *   lock FILE                 a lock (native/lock.c's protocol): the container's, then the networks'
 *   env NAME VALUE            the variable is VALUE ("" = unset or empty)
 *   build ID                  the replaying helper was built as ID (native/build/build-id)
 *   gen FILE TOKEN            the generation file holds TOKEN (missing: "")
 *   same PATH DEV INO SIZE MTIME_NS | inode PATH DEV INO | absent PATH
 *   text PATH DATA            the file holds exactly DATA
 *   link NAME                 the network interface exists
 *   proc PIDFILE PROGRAM ARG  the pid file names a live process: argv[0] PROGRAM, given ARG
 *   noline FILE MINFIELDS KEYCOL KEY OWNCOL N OWN...   no line of at least MINFIELDS fields has
 *                             KEY in KEYCOL and in OWNCOL a value not among the N (case-insensitive)
 *   rundir DIR N FILE...      the container's run dir: none of these files in it
 *   mkdir PATH | write PATH DATA | chown PATH UID GID | devices DIR N RULE...   (cgroups)
 *   file PATH MODE DATA       (files under the run dir root: the container's, its dnsmasq entries)
 *   hup PIDFILE PROGRAM ARG   SIGHUP to that process (dnsmasq re-reads its hosts dirs)
 *   unlock                    release the last lock taken
 *   touch PATH                create or truncate it, mtime now (when the container was last used)
 *   start N ARG...            the helper's start arguments
 *   end
 */
export const PLAN_MAGIC = 'tslxc-start-plan-2';

/** Variables that change what a start does. */
const PLAN_ENV = ['TSLXC_DIR', 'TSLXC_RUN_DIR', 'TSLXC_CGROUP_PREFIX', 'TSLXC_IDMAPPED_MOUNTS', 'TSLXC_LXCFS_BIN', 'TSLXC_HELPER'];

export const startPlanFile = (p: Paths, name: string) => path.join(startPlansDir(p), validateInstanceName(name));
export const lastUsedFile = (p: Paths, name: string) => path.join(containerDir(p, name), 'last-used');

export function dropStartPlan(p: Paths, name: string): void {
  fs.rmSync(startPlanFile(p, name), { force: true });
}

/** When the container was last used: the file's mtime (a plan's replay touches it the same way). */
export function touchLastUsed(p: Paths, name: string): void {
  const file = lastUsedFile(p, name);
  fs.closeSync(fs.openSync(file, 'w', 0o644));
  const now = new Date();
  fs.utimesSync(file, now, now);
}

/**
 * The state a start of this container depends on besides its own config and profiles (which it
 * reads first): the pool and image under its root, the networks of its nics and the addresses
 * every container claims (a nic keeps its address only while no other claims it), the pools and
 * volumes of its disks. Declared from the config, so nothing read along the way can be missed.
 */
export function startDependencies(p: Paths, name: string, expanded: Pick<Expanded, 'devices'>): string[] {
  const out: string[] = [];
  const rec = readRecord(containerDir(p, name));
  if (rec.pool) out.push(scope.pool(rec.pool));
  if (rec.image) out.push(scope.image(rec.image));
  for (const d of Object.values(expanded.devices)) {
    if (d.type === 'nic') {
      if (d.network) out.push(scope.network(d.network));
      out.push(scope.addresses());
    } else if (isVolumeDisk(d)) out.push(scope.pool(d.pool), scope.volume(d.pool, d.source ?? ''));
  }
  return out;
}

/** The build ids plans are checked against: the helper's (native/Makefile) and the TypeScript's (scripts/bundle.mjs). */
const helperBuildIdFile = () => path.join(path.dirname(helperPath()), 'build-id');
const distBuildIdFile = () => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build-id');

/**
 * Notes one start: the generations of the state it depends on (declared by the start, read
 * before that state), the cgroup writes it makes (through a wrapped CgroupSys), and whether it
 * can be replayed at all.
 */
export class StartRecorder {
  readonly cgroupOps: string[][] = [];
  /** why this start cannot be replayed; undefined: it can */
  unfit?: string;
  private readonly generations: GenerationSnapshot;

  constructor(
    private readonly p: Paths,
    private readonly name: string,
  ) {
    this.generations = new GenerationSnapshot(p);
  }

  refuse(reason: string): void {
    this.unfit ??= reason;
  }

  /** The start is about to read the state of these scopes. */
  dependOn(...scopes: string[]): void {
    try {
      this.generations.read(...scopes);
    } catch (err) {
      this.refuse(`cannot read a generation: ${(err as Error).message}`);
    }
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
        chown:
          f.chown &&
          (async (p, uid, gid) => {
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

  /** What must hold for the plan to hold, as it is now (after the start wrote what it writes). */
  private checks(): string[][] {
    const settled = this.generations.settle(scope.container(this.name));
    if ('changed' in settled) {
      this.refuse(`${settled.changed} changed while it started`);
      return [];
    }
    const helperId = readIfExists(helperBuildIdFile());
    const distId = readIfExists(distBuildIdFile());
    if (!helperId || !distId) {
      this.refuse('tslxc has no build id (run npm run build)');
      return [];
    }
    const out: string[][] = [
      ['build', helperId],
      ['text', distBuildIdFile(), distId],
    ];
    for (const [s, token] of settled.generations) out.push(['gen', generationFile(this.p, s), token]);
    // The container's dir as the start left it: a storage operation left unfinished (its journal,
    // a temp root to sweep) is recovered by the TypeScript side.
    out.push(statCheck(containerDir(this.p, this.name), 'content'));
    // lxcfs (read from mountinfo, not a state file): its mount point is another inode while it runs.
    out.push(statCheck(lxcfsFiles(this.p).dir, 'inode'));
    return out;
  }

  /** Write the plan (atomically), or remove a stale one when this start cannot be replayed. */
  write(plan: { lockFile: string; runDir: string; cgroupDirs: string[]; runFiles: string[]; helperArgs: string[]; network?: NetworkReplay }): void {
    const { p, name } = this;
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
    const checks = this.checks();
    if (this.unfit) {
      // As the replay says why it did not use one: the tests check which way a start went.
      if (process.env.TSLXC_PLAN_DEBUG === '1') process.stderr.write(`tslxc: no start plan for "${name}": ${this.unfit}\n`);
      dropStartPlan(p, name);
      return;
    }
    // The lock first: the checks then see what the TypeScript start would see under it.
    // Locks in the TypeScript start's order: the container's, then (nics) the networks'.
    const nics = net!.files.length > 0;
    const ops: string[][] = [[PLAN_MAGIC], ['lock', plan.lockFile], ...(nics ? [['lock', net!.lockFile]] : [])];
    for (const k of PLAN_ENV) ops.push(['env', k, process.env[k] ?? '']);
    ops.push(...checks, ...net!.checks);
    const pidFiles = [RUN_FILES.monitorPid, RUN_FILES.initPid];
    ops.push(['rundir', plan.runDir, String(pidFiles.length), ...pidFiles]);
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
    ops.push(['touch', lastUsedFile(p, name)]);
    const args = plan.helperArgs.slice(1);
    ops.push(['start', String(args.length), ...args], ['end']);
    if (ops.some((op) => op.some((s) => s.includes('\0')))) return dropStartPlan(p, name);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, ops.map((op) => op.map((s) => `${s}\0`).join('')).join(''), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
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
