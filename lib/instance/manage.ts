import fs from 'node:fs';
import { forgetHostKey, knownHostsFile } from '../ssh/known-hosts.js';
import { TslxcError } from '../errors.js';
import { validateInstanceName } from '../util/names.js';
import { containerDir, containerRunDir, locksDir } from '../state/paths.js';
import { dropStartPlan } from './plan.js';
import { withLock } from '../util/lock.js';
import { configExists, loadConfig, saveConfig } from './config.js';
import { sweepInstanceLocks, type Context } from './context.js';
import { validateHostname, writeIdentity } from './create.js';
import { templateFiles } from '../image/templates.js';
import { liveness } from './runtime.js';
import { cleanupDead, stopLocked } from './stop.js';
import { instanceState } from './status.js';
import { forgetNetwork } from '../network/instance.js';
import { deleteRootfs, renameRootfs, writeRootFiles } from '../storage/instance.js';

/** delete: refuses a running container unless forced, then removes every trace of it. */
export async function deleteInstance(ctx: Context, name: string, opts: { force?: boolean } = {}): Promise<void> {
  validateInstanceName(name);
  await ctx.withInstanceLock(name, async () => {
    if (!fs.existsSync(containerDir(ctx.paths, name))) throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"');
    const live = liveness(ctx.paths, name);
    if (live.initAlive || live.monitorAlive) {
      if (!opts.force) throw new TslxcError(`Container "${name}" is running`, undefined, `stop it first, or use "tslxc delete --force ${name}"`);
      await stopLocked(ctx, name, { force: true });
    } else {
      // Whatever a dead monitor left: cgroups, pid files.
      await cleanupDead(ctx, name, live.files);
    }
    await forgetNetwork(ctx, name);
    await deleteRootfs(ctx, name);
    fs.rmSync(containerDir(ctx.paths, name), { recursive: true, force: true });
    fs.rmSync(containerRunDir(ctx.paths, name), { recursive: true, force: true });
    dropStartPlan(ctx.paths, name);
    // Its SSH host key goes with it (a later container of that name has keys of its own).
    if (fs.existsSync(knownHostsFile(ctx.paths))) await forgetHostKey(ctx.paths, name).catch(() => 0);
  });
  sweepInstanceLocks(ctx.paths);
}

/** rename: a stopped container only (as LXD); the hostname follows the name when it was the name. */
export async function renameInstance(ctx: Context, from: string, to: string): Promise<void> {
  validateInstanceName(from);
  validateInstanceName(to);
  if (from === to) throw new TslxcError(`Cannot rename "${from}"`, 'the new name is the same');
  // Two locks, always taken in name order so two crossing renames cannot deadlock.
  const [a, b] = [from, to].sort();
  await ctx.withInstanceLock(a, () =>
    withLock(locksDir(ctx.paths), `ct-${b}`, async () => {
      const cfg = loadConfig(ctx.paths, from);
      if (configExists(ctx.paths, to) || fs.existsSync(containerDir(ctx.paths, to))) throw new TslxcError(`Cannot rename "${from}"`, `a container "${to}" already exists`);
      const state = await instanceState(ctx, cfg);
      if (state.status !== 'Stopped' && state.status !== 'Created') {
        throw new TslxcError(`Cannot rename "${from}"`, `it is ${state.status.toLowerCase()}`, `stop it first with "tslxc stop ${from}"`);
      }
      fs.renameSync(containerDir(ctx.paths, from), containerDir(ctx.paths, to));
      await renameRootfs(ctx, from, to);
      fs.rmSync(containerRunDir(ctx.paths, to), { recursive: true, force: true });
      dropStartPlan(ctx.paths, from);
      dropStartPlan(ctx.paths, to);
      if (fs.existsSync(containerRunDir(ctx.paths, from))) fs.renameSync(containerRunDir(ctx.paths, from), containerRunDir(ctx.paths, to));
      cfg.name = to;
      const rendered = templateFiles(ctx.paths, cfg.image?.fingerprint, 'rename', { name: to, hostname: cfg.hostname === from ? to : cfg.hostname });
      if (rendered.length) writeRootFiles(ctx, to, rendered);
      if (cfg.hostname === from) {
        cfg.hostname = to;
        validateHostname(to);
        writeIdentity(ctx, to, to);
      }
      saveConfig(ctx.paths, cfg);
    }, { purpose: `container "${b}"` }),
  );
}

/** pause/resume: the freezer cgroup stops every process of the container where it stands. */
export async function freezeInstance(ctx: Context, name: string, freeze: boolean): Promise<void> {
  await ctx.withInstanceLock(name, async () => {
    const cfg = loadConfig(ctx.paths, name);
    const state = await instanceState(ctx, cfg);
    const cg = await ctx.cgroups();
    if (freeze) {
      if (state.status === 'Frozen') throw new TslxcError(`Container "${name}" is already paused`);
      if (state.status !== 'Running') throw new TslxcError(`Cannot pause "${name}"`, `it is ${state.status.toLowerCase()}`);
      await cg.freeze(name);
    } else {
      if (state.status !== 'Frozen') throw new TslxcError(`Cannot resume "${name}"`, `it is ${state.status.toLowerCase()}, not paused`);
      await cg.thaw(name);
    }
  });
}
