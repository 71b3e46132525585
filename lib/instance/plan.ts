import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { containerDir, locksDir, RUN_FILES, startPlansDir, type Paths } from '../state/paths.js';
import { lockFile } from '../util/lock.js';
import { generationFile, GenerationSnapshot, scope } from '../state/generations.js';
import { validateInstanceName } from '../util/names.js';
import { helperPath } from '../state/helper.js';
import { lxcfsFiles } from '../host/lxcfs.js';
import type { NetworkReplay } from '../network/replay.js';
import type { Expanded } from '../profile/expand.js';
import { readRecord } from '../storage/record.js';
import { isVolumeDisk } from '../storage/volume.js';
import { encodeSpec, SPEC_MAGIC, type SpecOp } from '../state/spec.js';

/**
 * Start plans: `tslxc start NAME` without node.
 *
 * A start is computed as data, a start spec (StartSpec): the cgroup dirs and writes
 * (cgroup/plan.ts), the run dir files, each device type's steps (lib/device: a handler gives its
 * files as data), the helper's start arguments. The helper executes it (`plan-exec`,
 * native/plan.c). Working all of that out from the config, the profiles and the pools takes tens
 * of ms, plus node's own start-up; so after a start that went well this module saves the same
 * spec (a plan) with what keeps it valid in front: the generations (state/generations.ts) of the
 * state it was computed from, which the start declares (its container, its profiles, the networks,
 * pools, volumes and image its devices and root use: startDependencies), the builds of tslxc that
 * computed it and will replay it, the environment, and the dynamic facts that are no config (the
 * bridge is up, our dnsmasq runs its config, no DHCP lease took the address, no pid file is in the
 * run dir, the container dir is as the start left it). The next `tslxc start NAME` goes from
 * bin/tslxc straight to the helper (native/cli.c), which compares all of that and executes the
 * spec with the same executor. Anything that does not match (a config or profile change, a
 * rebuilt tslxc, a leftover of a crash) sends the command to node as before, which computes and
 * executes a fresh spec and saves it. Plans live in the run dir: a host reboot forgets them.
 *
 * The phases of a spec, and what stays TypeScript between them:
 *   1. before it (TypeScript, not replayed: their result is checked instead): the id map, the
 *      rootfs (storage/instance.ts: a pool to activate, a root size, files shifted once), the host
 *      set-up a first start on the host needs (a cgroup prefix level, a stale cgroup a crash left);
 *   2. network (a handler's prepare, under the networks' lock): addresses are chosen in TypeScript
 *      (they depend on every container's claims), then the steps that publish them (the state
 *      file, dnsmasq's entries, the hooks, dnsmasq told) are executed; a replay checks that the
 *      choice still holds (leases, dnsmasq, the bridge) and executes the same steps;
 *   3. host: the cgroup steps, the run dir files, last-used touched;
 *   4. start: the helper's start (clone, mounts, init). What needs the container's pid (its veth
 *      in its network namespace) is the start-host hook the monitor runs after clone: a file of
 *      phase 2, so the same in both.
 *
 * The C side only compares and executes: every rule a check applies (which process is our
 * dnsmasq, which lease line takes an address, which files mean "running") is given here as data.
 *
 * Only starts that touch nothing outside the container's own cgroups and network files get a
 * plan: nics on managed networks are replayed (network/replay.ts), proxies (nft rules shared by
 * every container) and unix devices (a grant on the shared cgroup prefix) are not; nor is a start
 * that cleaned up after a crash.
 *
 * The format is a list of NUL-terminated strings, an operation name then its operands:
 *   tslxc-start-plan-2
 *   lock FILE                 a lock (native/lock.c's protocol): the container's, lxcfs's, then the networks'
 *   env NAME VALUE            the variable is VALUE ("" = unset or empty)
 *   build ID                  the replaying helper was built as ID (native/build/build-id)
 *   gen FILE TOKEN            the generation file holds TOKEN (missing: "")
 *   same PATH DEV INO SIZE MTIME_NS | inode PATH DEV INO | absent PATH
 *   text PATH DATA            the file holds exactly DATA
 *   link NAME                 the network interface exists
 *   proc PIDFILE PROGRAM ARG  the pid file names a live process: argv[0] PROGRAM, given ARG
 *   noline FILE MINFIELDS KEYCOL KEY OWNCOL N OWN...   no line of at least MINFIELDS fields has
 *                             KEY in KEYCOL and in OWNCOL a value not among the N (case-insensitive)
 *   rundir DIR N FILE...      the container's run dir (made if missing): none of these files in it
 *   mkdir PATH | write PATH DATA | chown PATH UID GID | devices DIR N RULE...   (cgroups)
 *   file PATH MODE DATA       (files under the run dir root: the container's, its dnsmasq entries)
 *   hup PIDFILE PROGRAM ARG   SIGHUP to that process (dnsmasq re-reads its hosts dirs)
 *   unlock                    release the last lock taken
 *   touch PATH                create or truncate it, mtime now (when the container was last used)
 *   start N ARG...            the helper's start arguments
 *   end
 * A spec the TypeScript start executes has no locks (it holds them) and no checks; one that does
 * not start the container (phase 2) ends with `end`.
 */
export const PLAN_MAGIC = SPEC_MAGIC;

/** Variables that change what a start does. */
const PLAN_ENV = ['TSLXC_DIR', 'TSLXC_RUN_DIR', 'TSLXC_CGROUP_PREFIX', 'TSLXC_IDMAPPED_MOUNTS', 'TSLXC_LXCFS_BIN', 'TSLXC_HELPER'];

export const startPlanFile = (p: Paths, name: string) => path.join(startPlansDir(p), validateInstanceName(name));
export const lastUsedFile = (p: Paths, name: string) => path.join(containerDir(p, name), 'last-used');

export function dropStartPlan(p: Paths, name: string): void {
  fs.rmSync(startPlanFile(p, name), { force: true });
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

/** A start as data: what the TypeScript start executes (state/spec.ts) and a plan replays. */
export interface StartSpec {
  /** the container's lock (the TypeScript start holds it) */
  lockFile: string;
  runDir: string;
  /** the container's cgroup dirs: the only ones its steps make */
  cgroupDirs: string[];
  /** phase 2, executed by the network handler's prepare; undefined: a plan cannot replay it */
  network?: NetworkReplay;
  /** phase 3: cgroup steps and run dir files */
  host: SpecOp[];
  /** phase 4 */
  helperArgs: string[];
}

/** Phases 3 and 4, as the TypeScript start executes them (phase 2 ran already). */
export function hostAndStartSteps(p: Paths, name: string, spec: StartSpec): SpecOp[] {
  const args = spec.helperArgs.slice(1);
  return [...spec.host, ['touch', lastUsedFile(p, name)], ['start', String(args.length), ...args]];
}

/**
 * Whether a start can be saved as a plan: the generations of the state it depends on (declared by
 * the start, read before that state), and the reasons it cannot be replayed, if any.
 */
export class StartPlan {
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

  /** What must hold for the plan to hold, as it is now (after the spec was executed). */
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

  /** Save the executed spec as the plan (atomically), or remove a stale one when it cannot be replayed. */
  write(spec: StartSpec): void {
    const { p, name } = this;
    const file = startPlanFile(p, name);
    for (const k of PLAN_ENV) {
      const v = process.env[k];
      if (v && k.endsWith('DIR') && !path.isAbsolute(v)) this.refuse(`${k} is a relative path`);
    }
    const outside = spec.host.find((op) => op[0] === 'mkdir' && !spec.cgroupDirs.some((d) => op[1] === d || op[1].startsWith(`${d}/`)));
    if (outside) this.refuse(`cgroup ${outside[1]} is not the container's own`);
    if (spec.helperArgs[0] !== 'start') this.refuse('not a start');
    const net = spec.network;
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
    const nics = net!.steps.length > 0;
    // A start that binds lxcfs's views holds the lxcfs lock from its check of the mount until they
    // are bound, so that `admin lxcfs stop` cannot end lxcfs in between (a held one sends the start
    // to node, which looks again once bound). Before the networks' lock, which is released first.
    const lxcfs = spec.helperArgs.some((a) => a.startsWith(`${lxcfsFiles(p).dir}/`));
    const ops: SpecOp[] = [
      [PLAN_MAGIC],
      ['lock', spec.lockFile],
      ...(lxcfs ? [['lock', lockFile(locksDir(p), 'lxcfs')]] : []),
      ...(nics ? [['lock', net!.lockFile]] : []),
    ];
    for (const k of PLAN_ENV) ops.push(['env', k, process.env[k] ?? '']);
    ops.push(...checks, ...net!.checks);
    const pidFiles = [RUN_FILES.monitorPid, RUN_FILES.initPid];
    ops.push(['rundir', spec.runDir, String(pidFiles.length), ...pidFiles]);
    if (nics) ops.push(...net!.steps, ['unlock']);
    ops.push(...hostAndStartSteps(p, name, spec), ['end']);
    const text = encodeSpec(ops);
    if (text === undefined) return dropStartPlan(p, name);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
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
