import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { containerRunDir, RUN_FILES } from '../state/paths.js';
import { prepareRootfs, rootfsArgs } from '../storage/instance.js';
import { idmapArgs, type IdMap } from '../config/idmap.js';
import { mappedRoot, planIdmap, prepareRootIds } from './idmap.js';
import { ensureLxcfs, lxcfsBindArgs } from '../host/lxcfs.js';
import { recordAppliedDevices } from './hotplug.js';
import { startDevices } from '../device/registry.js';
import { loadConfig, saveConfig, type InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { helperError, runHelper } from '../state/helper.js';
import { clearRuntime, consoleTail, liveness } from '../state/runtime.js';
import { cleanupDead, STOP_ARGS_FILE, writeStopArgs } from './stop.js';
import { DROPPED_CAPABILITIES, MASKED_PATHS, SECURITY_FILE } from './policy.js';
import { seccompArgs, securityPolicy } from '../config/security.js';
import { expandInstance } from '../profile/expand.js';
import { applyInstanceLimits } from './limits.js';
import { Reverter } from '../util/revert.js';
import { startDependencies, StartRecorder, touchLastUsed } from './plan.js';
import { scope } from '../state/generations.js';
import { ATTACH_ARGS_FILE, EXEC_CHECK_FILE, writeAttachFiles } from './exec.js';
import { instanceLockFile } from '../state/context.js';
import type { NetworkReplay } from '../network/replay.js';
import { hostNeedArgs } from '../host/sysctl.js';

export interface StartResult {
  initPid: number;
  monitorPid: number;
}

export async function startInstance(ctx: Context, name: string, opts: { debug?: boolean } = {}): Promise<StartResult> {
  return ctx.withInstanceLock(name, () => startLocked(ctx, name, opts));
}

export async function startLocked(ctx: Context, name: string, opts: { debug?: boolean } = {}): Promise<StartResult> {
  // What this start depends on and does to the host is noted, for the plan the next start can
  // replay without node (plan.ts).
  const rec = new StartRecorder(ctx.paths, name);
  const started = await startRecorded(ctx, name, rec, opts);
  rec.write({
    lockFile: instanceLockFile(ctx.paths, name),
    runDir: containerRunDir(ctx.paths, name),
    cgroupDirs: started.cgroupDirs,
    runFiles: PLANNED_RUN_FILES.map((f) => path.join(containerRunDir(ctx.paths, name), f)),
    helperArgs: started.helperArgs,
    network: started.network,
  });
  return started.result;
}

/** The run dir files a start writes for later commands (a plan writes them again). */
const PLANNED_RUN_FILES = ['disks', 'devices.json', SECURITY_FILE, ATTACH_ARGS_FILE, EXEC_CHECK_FILE, STOP_ARGS_FILE];

async function startRecorded(
  ctx: Context,
  name: string,
  rec: StartRecorder,
  opts: { debug?: boolean },
): Promise<{ result: StartResult; helperArgs: string[]; cgroupDirs: string[]; network?: NetworkReplay }> {
  // Each generation is read before the state it covers (state/generations.ts).
  rec.dependOn(scope.container(name));
  const cfg = loadConfig(ctx.paths, name);
  if (cfg.status === 'creating') {
    throw new TslxcError(`Cannot start "${name}"`, 'its creation did not finish', `delete it with "tslxc delete ${name}" and create it again`);
  }
  const live = liveness(ctx.paths, name);
  if (live.monitorAlive && live.initAlive) throw new TslxcError(`Container "${name}" is already running`);
  if (live.initAlive || live.monitorAlive) {
    throw new TslxcError(
      `Cannot start "${name}"`,
      'it is in an Error state (its monitor or init is still alive alone)',
      `run "tslxc stop --force ${name}" first`,
    );
  }
  if (live.leftovers) {
    rec.refuse('a crashed run was cleaned up');
    await cleanupDead(ctx, name, live.files);
  }
  if (opts.debug) rec.refuse('--debug');

  rec.dependOn(...(cfg.profiles ?? []).map(scope.profile));
  const expanded = expandInstance(ctx.paths, cfg);
  rec.dependOn(...startDependencies(ctx.paths, name, expanded));
  // The id map first: a bad idmap key fails the start before anything is made.
  const idmap = await planIdmap(ctx, cfg, expanded.config);
  // The devices next, each type by its handler (lib/device): a required host node that is missing
  // fails the start here, before anything is made.
  const devices = startDevices({ ctx, cfg, idmap }, expanded.devices);
  if (devices.unreplayable) rec.refuse(devices.unreplayable);
  const cg = await ctx.recordingCgroups(rec);
  let network: NetworkReplay | undefined;
  const runDir = containerRunDir(ctx.paths, name);
  mkdirp(runDir, 0o700);
  fs.chmodSync(runDir, 0o700);
  // Each step registers its undo: a start that fails at any point leaves no cgroup, network
  // piece, pid file or process behind.
  const res = await Reverter.run(async (revert) => {
    let dirs: string[];
    try {
      const rules = devices.cgroupRules;
      dirs = rules.length ? await ctx.withDevicesLock(() => cg.create(name, rules)) : await cg.create(name);
    } catch (err) {
      throw new TslxcError(`Cannot start "${name}"`, `cannot create its cgroups: ${(err as Error).message}`);
    }
    revert.add(() => cg.remove(name));
    if (idmap) {
      const root = mappedRoot(idmap);
      await cg.delegate(name, root.uid, root.gid);
    }
    await applyInstanceLimits(cg, name, expanded.config);
    const prepared = await devices.prepare(revert);
    network = prepared.network;
    await prepareRootfs(ctx, cfg.name);
    const { idmapRootfs } = prepareRootIds(ctx, cfg, idmap);
    // Disks and nodes go in files the monitor reads at every boot, so live changes survive a reboot.
    devices.writeFiles();
    recordAppliedDevices(ctx.paths, name, expanded.devices);
    // lxcfs's views (LXD's default): started here when it does not run, as dnsmasq for a network.
    const lxcfs = securityPolicy(expanded.config).lxcfs && (await ensureLxcfs(ctx.paths)) ? lxcfsBindArgs(ctx.paths) : [];
    const args = helperStartArgs(
      ctx,
      cfg,
      runDir,
      dirs,
      [...prepared.helperArgs, ...lxcfs],
      opts.debug,
      expanded.config,
      idmap && idmapArgsFor(idmap, idmapRootfs),
    );
    // Attached commands get the seccomp policy init started with (exec.ts reads it back).
    fs.writeFileSync(path.join(runDir, SECURITY_FILE), `${JSON.stringify(seccompArgs(securityPolicy(expanded.config)))}\n`, { mode: 0o600 });
    await writeAttachFiles(ctx, cg, name);
    // Marked started before init is exec'd, so a start killed from here on does not leave a
    // container that ran shown as never started; a failed start puts the mark back. Written
    // only the first time: a start that leaves the config as it was keeps the plan valid.
    if (cfg.status !== 'started') {
      const before = cfg.status;
      cfg.status = 'started';
      saveConfig(ctx.paths, cfg);
      revert.add(() => saveConfig(ctx.paths, { ...cfg, status: before }));
    }
    // After the config's last write: the file names the config as this start left it.
    writeStopArgs(ctx.paths, cfg);
    const consoleFrom = fileSize(path.join(runDir, RUN_FILES.consoleLog));
    const out = await runHelper(args);
    forwardWarnings(out.stderr);
    if (out.code !== 0) {
      clearRuntime(liveness(ctx.paths, name).files);
      throw startFailure(name, helperError(out.stderr), runDir, consoleFrom, opts.debug);
    }
    return { out, args, dirs };
  });
  const [initPid, monitorPid] = res.out.stdout.trim().split(/\s+/).map(Number);
  // When it was last used goes beside the config.
  touchLastUsed(ctx.paths, name);
  return { result: { initPid, monitorPid }, helperArgs: res.args, cgroupDirs: res.dirs, network };
}

/** A start whose init ended while the helper waited for it to settle: the boot itself failed. */
export class InitEndedError extends TslxcError {
  constructor(
    readonly container: string,
    readonly why: string,
    fix?: string,
  ) {
    super(`Cannot start "${container}"`, why, fix);
  }
}

const EARLY_END = /^init: the container's init ended (\d+) ms after it was started \((.*)\)$/;

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function startFailure(name: string, helperLine: string, runDir: string, consoleFrom: number, debug?: boolean): TslxcError {
  const ended = EARLY_END.exec(helperLine);
  if (!ended) return new TslxcError(`Cannot start "${name}"`, helperLine, debug ? undefined : 'run with --debug for details');
  const how = ended[2]
    .replace(/^crash status (\d+)$/, 'exit status $1')
    .replace(/^crash signal (\d+)$/, 'killed by signal $1')
    .replace(/^stop$/, 'it stopped');
  const tail = consoleTail(runDir, consoleFrom);
  return new InitEndedError(
    name,
    `its init ended ${ended[1]} ms after it was started (${how})${tail ? `; its console: ${tail}` : ''}`,
    `"tslxc console --show-log ${name}" shows the whole console`,
  );
}

/** The helper's warnings (the host limits a next container would hit) go to the user as they are. */
function forwardWarnings(stderr: string): void {
  for (const line of stderr.split('\n')) if (line.startsWith('Warning: ')) process.stderr.write(`${line}\n`);
}

/** init's environment: the image's and the container's own, then `environment.*` config keys (profiles included), which win. */
export function initEnvironment(cfg: InstanceConfig, config: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...(cfg.environment ?? {}) };
  for (const [k, v] of Object.entries(config)) if (k.startsWith('environment.')) env[k.slice('environment.'.length)] = v;
  return env;
}

/**
 * The helper's user namespace options: the maps, and --rootfs-idmap (the rootfs is kept with
 * unshifted ids on disk and shown through an idmapped mount) where the filesystem allows it;
 * elsewhere the files were shifted on disk by prepareRootIds.
 */
function idmapArgsFor(map: IdMap, idmapRootfs: boolean): string[] {
  return [...idmapArgs(map), ...(idmapRootfs ? ['--rootfs-idmap'] : [])];
}

/** `deviceArgs`: what the device handlers give the helper (the disks and nodes files, the network's hooks, lxcfs's binds). */
export function helperStartArgs(
  ctx: Context,
  cfg: InstanceConfig,
  runDir: string,
  cgroupDirs: string[],
  deviceArgs: string[],
  debug?: boolean,
  config: Record<string, string> = {},
  userns?: string[],
): string[] {
  const args = ['start', '--name', cfg.name, ...rootfsArgs(ctx, cfg), '--hostname', cfg.hostname, '--run-dir', runDir];
  if (userns) args.push(...userns);
  for (const d of cgroupDirs) args.push('--cgroup', d);
  for (const [k, v] of Object.entries(initEnvironment(cfg, config))) args.push('--env', `${k}=${v}`);
  for (const c of DROPPED_CAPABILITIES) args.push('--cap-drop', c);
  for (const m of MASKED_PATHS) args.push('--mask', m);
  const security = securityPolicy(config);
  args.push(...seccompArgs(security));
  if (security.nesting) args.push('--cgroup-rw');
  args.push(...deviceArgs);
  if (debug) args.push('--debug');
  args.push(...hostNeedArgs(cfg.stop_signal));
  args.push('--', ...cfg.init);
  return args;
}
