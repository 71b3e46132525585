import type { Context } from '../state/context.js';
import { helperError, runHelper } from '../state/helper.js';
import { deviceRuleText, type DeviceRule } from './devices.js';
import { openCgroups } from './index.js';
import { planCgroups } from './plan.js';
import { realSys } from './sys.js';
import type { CgroupDriver } from './types.js';

// The host's cgroup driver of each Context, kept here rather than in Context so that the base layer
// (lib/state) knows nothing of cgroups. A WeakMap: a Context lives as long as its command or
// server, and its driver goes with it.
const drivers = new WeakMap<Context, Promise<CgroupDriver>>();

/** v2: the device allow list as a BPF program on the container's cgroup (the helper's `devices`). */
async function attachDevices(dir: string, rules: readonly DeviceRule[], opts: { replace?: boolean } = {}): Promise<void> {
  const r = await runHelper(['devices', '--cgroup', dir, ...(opts.replace ? ['--replace'] : []), ...rules.flatMap((x) => ['--allow', deviceRuleText(x)])]);
  if (r.code !== 0) throw new Error(helperError(r.stderr));
}

/**
 * The host's cgroup driver for the installation of `ctx` (its prefix), detected once per Context and
 * lazily, because `list` of stopped containers should not pay for it.
 */
export function cgroupsOf(ctx: Context): Promise<CgroupDriver> {
  let driver = drivers.get(ctx);
  if (!driver) {
    driver = Promise.resolve(openCgroups({ prefix: ctx.paths.cgroupPrefix, attachDevices }));
    drivers.set(ctx, driver);
  }
  return driver;
}

/** Makes `driver` the one cgroupsOf(ctx) returns: a test's fake kernel. */
export function useCgroups(ctx: Context, driver: CgroupDriver): void {
  drivers.set(ctx, Promise.resolve(driver));
}

/**
 * The same driver, changing nothing: what it would make and write for container `name` becomes
 * steps of a start spec (cgroup/plan.ts), which the helper executes.
 */
export async function planningCgroups(ctx: Context, name: string): Promise<{ driver: CgroupDriver; steps: string[][] }> {
  const real = await cgroupsOf(ctx);
  const planner = planCgroups(realSys, real.dirs(name));
  const driver = await openCgroups({ prefix: ctx.paths.cgroupPrefix, layout: real.layout, sys: planner.sys, attachDevices: planner.attachDevices });
  return { driver, steps: planner.steps };
}

/**
 * Context's step for a freeze a killed snapshot or copy abandoned (ContextOptions.thawIfFrozen):
 * thaws the container if it is frozen and says whether it was. One that is not there (stopped
 * since) counts as thawed.
 */
export async function thawIfFrozen(ctx: Context, name: string): Promise<boolean> {
  const cg = await cgroupsOf(ctx);
  if ((await cg.state(name).catch(() => 'thawed')) !== 'frozen') return false;
  await cg.thaw(name);
  return true;
}
