import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { containerRunDir, RUN_FILES } from '../state/paths.js';
import { prepareRootfs, rootfsArgs } from '../storage/instance.js';
import { idmapArgs, type IdMap } from '../config/idmap.js';
import { mappedRoot, planIdmap, prepareRootIds } from './idmap.js';
import { ensureLxcfs, lxcfsAfterBind, lxcfsBindArgs, lxcfsViews } from '../host/lxcfs.js';
import { appliedDevicesRunFile } from './hotplug.js';
import { startDevices } from '../device/registry.js';
import { loadConfig, saveConfig, type InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { helperError } from '../state/helper.js';
import { executeSpec, fileOp } from '../state/spec.js';
import { clearRuntime, consoleTail, liveness } from '../state/runtime.js';
import { cleanupDead, stopArgsRunFile } from './stop.js';
import { onExitArgs, onExitRunFile } from './ephemeral.js';
import { DROPPED_CAPABILITIES, MASKED_PATHS, SECURITY_FILE } from './policy.js';
import { seccompArgs, securityPolicy } from '../config/security.js';
import { expandInstance } from '../profile/expand.js';
import type { Device } from '../profile/store.js';
import { applyInstanceLimits } from './limits.js';
import { Reverter } from '../util/revert.js';
import { hostAndStartSteps, startDependencies, StartPlan, type StartSpec } from './plan.js';
import { scope } from '../state/generations.js';
import { attachRunFiles } from './exec.js';
import { instanceLockFile } from '../state/context.js';
import { CgroupSetupNeeded } from '../cgroup/plan.js';
import type { CgroupDriver } from '../cgroup/types.js';
import type { DeviceRule } from '../cgroup/devices.js';
import { hostNeedArgs } from '../host/sysctl.js';
import { cgroupsOf, planningCgroups } from '../cgroup/context.js';
import { pausePoint } from '../util/crash.js';

export interface StartResult {
  initPid: number;
  monitorPid: number;
}

export async function startInstance(ctx: Context, name: string, opts: { debug?: boolean } = {}): Promise<StartResult> {
  return ctx.withInstanceLock(name, () => startLocked(ctx, name, opts));
}

export async function startLocked(ctx: Context, name: string, opts: { debug?: boolean } = {}): Promise<StartResult> {
  // What this start depends on, for the plan the next start can replay without node (plan.ts).
  const plan = new StartPlan(ctx.paths, name);
  const started = await startComputed(ctx, name, plan, opts);
  plan.write(started.spec);
  return started.result;
}

/** The run dir files a start writes for later commands. */
async function runDirFiles(
  ctx: Context,
  cg: CgroupDriver,
  cfg: InstanceConfig,
  config: Record<string, string>,
  devices: Record<string, Device>,
): Promise<Array<{ path: string; mode?: number; data?: string }>> {
  const p = ctx.paths;
  const runDir = containerRunDir(p, cfg.name);
  const seccomp = seccompArgs(securityPolicy(config));
  return [
    appliedDevicesRunFile(p, cfg.name, devices),
    // Attached commands get the seccomp policy init started with (exec.ts reads it back).
    { path: path.join(runDir, SECURITY_FILE), mode: 0o600, data: `${JSON.stringify(seccomp)}\n` },
    ...(await attachRunFiles(ctx, cg, cfg.name, seccomp)),
    // After the config's last write: the file names the config as this start left it.
    stopArgsRunFile(p, cfg),
    onExitRunFile(p, cfg),
  ];
}

/** A cgroup error that is host set-up the spec does not hold (cgroup/plan.ts), maybe wrapped. */
function needsSetup(err: unknown): boolean {
  for (let e = err; e; e = (e as { cause?: unknown }).cause) if (e instanceof CgroupSetupNeeded) return true;
  return false;
}

/**
 * The container's cgroups as steps: made with its device grants, handed to its root when it is
 * unprivileged, its limits written. A host that first needs a prefix level, or a stale cgroup a
 * crash left removed, gets that done by the driver itself first (it is not part of any start).
 */
async function cgroupSteps(ctx: Context, name: string, rules: DeviceRule[], idmap: IdMap | undefined, config: Record<string, string>) {
  for (let setUp = false; ; setUp = true) {
    const { driver, steps } = await planningCgroups(ctx, name);
    try {
      await driver.create(name, rules);
      if (idmap) {
        const root = mappedRoot(idmap);
        await driver.delegate(name, root.uid, root.gid);
      }
      await applyInstanceLimits(driver, name, config);
      return { driver, steps };
    } catch (err) {
      if (setUp || !needsSetup(err)) throw err;
    }
    const cg = await cgroupsOf(ctx);
    await cg.create(name, rules);
    await cg.remove(name);
  }
}

async function startComputed(ctx: Context, name: string, plan: StartPlan, opts: { debug?: boolean }): Promise<{ result: StartResult; spec: StartSpec }> {
  // Each generation is read before the state it covers (state/generations.ts).
  plan.dependOn(scope.container(name));
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
    plan.refuse('a crashed run was cleaned up');
    await cleanupDead(ctx, name, live.files);
  }
  if (opts.debug) plan.refuse('--debug');

  plan.dependOn(...(cfg.profiles ?? []).map(scope.profile));
  const expanded = expandInstance(ctx.paths, cfg);
  plan.dependOn(...startDependencies(ctx.paths, name, expanded));
  // The id map first: a bad idmap key fails the start before anything is made.
  const idmap = await planIdmap(ctx, cfg, expanded.config);
  // The devices next, each type by its handler (lib/device): a required host node that is missing
  // fails the start here, before anything is made.
  const devices = startDevices({ ctx, cfg, idmap }, expanded.devices);
  if (devices.unreplayable) plan.refuse(devices.unreplayable);
  const runDir = containerRunDir(ctx.paths, name);
  mkdirp(runDir, 0o700);
  fs.chmodSync(runDir, 0o700);
  const rules = devices.cgroupRules;
  // Grants beyond the defaults change the prefix all containers share (v1): its device lists are
  // read to compute the steps and written by them, under one hold of the lock.
  const devicesLocked = <T>(fn: () => Promise<T>): Promise<T> => (rules.length ? ctx.withDevicesLock(fn) : fn());
  // Each step registers its undo: a start that fails at any point leaves no cgroup, network
  // piece, pid file or process behind.
  const res = await Reverter.run((revert) =>
    devicesLocked(async () => {
      const cgroupDirs = (await cgroupsOf(ctx)).dirs(name);
      let cg: Awaited<ReturnType<typeof cgroupSteps>>;
      try {
        cg = await cgroupSteps(ctx, name, rules, idmap, expanded.config);
      } catch (err) {
        if (err instanceof TslxcError && !needsSetup(err)) throw err;
        throw new TslxcError(`Cannot start "${name}"`, `cannot create its cgroups: ${(err as Error).message}`);
      }
      // The executor undoes its own steps when one fails; this is for a failure after it ran.
      revert.add(async () => (await cgroupsOf(ctx)).remove(name));
      await prepareRootfs(ctx, cfg.name);
      const { idmapRootfs } = prepareRootIds(ctx, cfg, idmap);
      // Phase 2 (plan.ts): the network's addresses chosen, its steps executed under its lock.
      const prepared = await devices.prepare(revert);
      // Marked started before init is exec'd, so a start killed from here on does not leave a
      // container that ran shown as never started; a failed start puts the mark back. Written
      // only the first time: a start that leaves the config as it was keeps the plan valid.
      if (cfg.status !== 'started') {
        const before = cfg.status;
        cfg.status = 'started';
        saveConfig(ctx.paths, cfg);
        revert.add(() => saveConfig(ctx.paths, { ...cfg, status: before }));
      }
      // Disks and nodes go in files the monitor reads at every boot, so live changes survive a reboot.
      const files = [...devices.files(), ...(await runDirFiles(ctx, cg.driver, cfg, expanded.config, expanded.devices))];
      // lxcfs's views (LXD's default): started here when it does not run, as dnsmasq for a network.
      const views = securityPolicy(expanded.config).lxcfs && (await ensureLxcfs(ctx.paths)) ? lxcfsViews(ctx.paths) : [];
      await pausePoint('start-lxcfs-checked');
      const helperArgs = helperStartArgs(
        ctx,
        cfg,
        runDir,
        cgroupDirs,
        [...prepared.helperArgs, ...lxcfsBindArgs(ctx.paths, views)],
        opts.debug,
        expanded.config,
        idmap && idmapArgsFor(idmap, idmapRootfs),
      );
      // A file that cannot be written as it must (a path with a newline) is not left stale either.
      const host = [...cg.steps];
      for (const f of files) {
        if (f.data === undefined) fs.rmSync(f.path, { force: true });
        else host.push(fileOp({ path: f.path, mode: f.mode ?? 0o600, data: f.data }));
      }
      const spec: StartSpec = { lockFile: instanceLockFile(ctx.paths, name), runDir, cgroupDirs, network: prepared.network, host, helperArgs };
      const consoleFrom = fileSize(path.join(runDir, RUN_FILES.consoleLog));
      const out = await executeSpec(runDir, hostAndStartSteps(ctx.paths, name, spec));
      forwardWarnings(out.stderr);
      if (out.code !== 0) {
        clearRuntime(liveness(ctx.paths, name).files);
        throw startFailure(name, helperError(out.stderr), runDir, consoleFrom, opts.debug);
      }
      return { out, spec, views };
    }),
  );
  const [initPid, monitorPid] = res.out.stdout.trim().split(/\s+/).map(Number);
  // A stop of lxcfs between the check above and the binds: found and repaired here.
  await lxcfsAfterBind(ctx.paths, name, initPid, res.views);
  return { result: { initPid, monitorPid }, spec: res.spec };
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
  args.push(...onExitArgs(ctx.paths, cfg));
  if (debug) args.push('--debug');
  args.push(...hostNeedArgs(cfg.stop_signal));
  args.push('--', ...cfg.init);
  return args;
}
