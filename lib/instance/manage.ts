import fs from 'node:fs';
import path from 'node:path';
import { forgetHostKey, knownHostsFile } from '../ssh/known-hosts.js';
import { TslxcError } from '../errors.js';
import { validateInstanceName } from '../util/names.js';
import { containerDir, containerRunDir } from '../state/paths.js';
import { dropStartPlan } from './plan.js';
import { configExists, configWritten, loadConfig, renameMarker, writeRenameMarker, type InstanceConfig } from '../state/config.js';
import { sweepInstanceLocks, type Context } from '../state/context.js';
import { validateHostname, writeIdentity } from './create.js';
import { templateFiles } from '../image/templates.js';
import { liveness } from '../state/runtime.js';
import { cleanupDead, stopLocked } from './stop.js';
import { instanceState } from './status.js';
import { forgetNetwork } from '../network/instance.js';
import { deleteRootfs, rootfsRenames, writeRootFiles } from '../storage/instance.js';
import { commitRenames } from '../state/journal.js';
import { crashPoint } from '../util/crash.js';
import { writeYamlAtomic } from '../util/yaml.js';
import { cgroupsOf } from '../cgroup/context.js';

/** delete: refuses a running container unless forced, then removes every trace of it. */
export async function deleteInstance(ctx: Context, name: string, opts: { force?: boolean } = {}): Promise<void> {
  validateInstanceName(name);
  await ctx.withInstanceLock(name, () => deleteLocked(ctx, name, opts));
  sweepInstanceLocks(ctx.paths);
}

/** deleteInstance with the container's lock held by the caller (an ephemeral one deleted by its stop). */
export async function deleteLocked(ctx: Context, name: string, opts: { force?: boolean } = {}): Promise<void> {
  if (!fs.existsSync(containerDir(ctx.paths, name)))
    throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"', { kind: 'not-found' });
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
  configWritten(ctx.paths, name, {}, {});
  // Its SSH host key goes with it (a later container of that name has keys of its own).
  if (fs.existsSync(knownHostsFile(ctx.paths))) await forgetHostKey(ctx.paths, name).catch(() => 0);
}

/**
 * rename: a stopped container only (as LXD); the hostname follows the name when it was the name.
 * Journaled like a restore (state/journal.ts): the root's identity files and the new config are
 * written first (the config beside the old one), then the commit lists the renames (the root's
 * places outside the dir, the run dir, the config, and last the container's dir). A tslxc killed
 * before the commit leaves the old name; one killed after it has the new one: reads find it there
 * through the marker (state/config.ts), and the next command that takes either name's lock
 * finishes the renames (Context.withInstanceLock).
 */
export async function renameInstance(ctx: Context, from: string, to: string): Promise<void> {
  validateInstanceName(from);
  validateInstanceName(to);
  if (from === to) throw new TslxcError(`Cannot rename "${from}"`, 'the new name is the same');
  // Two locks, always taken in name order so two crossing renames cannot deadlock.
  const [a, b] = [from, to].sort();
  await ctx.withInstanceLock(a, () =>
    ctx.withInstanceLock(b, async () => {
      const cfg = loadConfig(ctx.paths, from);
      if (configExists(ctx.paths, to) || fs.existsSync(containerDir(ctx.paths, to)))
        throw new TslxcError(`Cannot rename "${from}"`, `a container "${to}" already exists`, undefined, { kind: 'conflict' });
      const state = await instanceState(ctx, cfg);
      if (state.status !== 'Stopped' && state.status !== 'Created') {
        throw new TslxcError(`Cannot rename "${from}"`, `it is ${state.status.toLowerCase()}`, `stop it first with "tslxc stop ${from}"`);
      }
      const followsName = cfg.hostname === from;
      if (followsName) validateHostname(to);
      const fromDir = containerDir(ctx.paths, from);
      const toDir = containerDir(ctx.paths, to);
      const renamed: InstanceConfig = { ...cfg, name: to, hostname: followsName ? to : cfg.hostname };
      const renames = await rootfsRenames(ctx, from, to);
      // The root's files that name it, before the commit: a rename killed after it is whole, one
      // killed before it is done again by running it again.
      const rendered = templateFiles(ctx.paths, cfg.image?.fingerprint, 'rename', { name: to, hostname: renamed.hostname });
      if (rendered.length) writeRootFiles(ctx, from, rendered);
      if (followsName) writeIdentity(ctx, from, to);
      fs.rmSync(containerRunDir(ctx.paths, to), { recursive: true, force: true });
      if (fs.existsSync(containerRunDir(ctx.paths, from))) renames.push([containerRunDir(ctx.paths, from), containerRunDir(ctx.paths, to)]);
      const newConfig = path.join(fromDir, `.config-rename-${process.pid}.yaml`);
      const marker = renameMarker(ctx.paths, to);
      try {
        writeYamlAtomic(newConfig, renamed, 0o600);
        writeRenameMarker(ctx.paths, from, to);
      } catch (err) {
        for (const f of [newConfig, marker]) fs.rmSync(f, { force: true });
        throw err;
      }
      renames.push([newConfig, path.join(fromDir, 'config.yaml')], [fromDir, toDir]);
      dropStartPlan(ctx.paths, from);
      dropStartPlan(ctx.paths, to);
      crashPoint('rename:prepared');
      commitRenames(fromDir, 'rename', renames, [marker]);
      fs.rmSync(marker, { force: true });
      configWritten(ctx.paths, from, {}, {});
      configWritten(ctx.paths, to, cfg, renamed);
    }),
  );
}

/** pause/resume: the freezer cgroup stops every process of the container where it stands. */
export async function freezeInstance(ctx: Context, name: string, freeze: boolean): Promise<void> {
  await ctx.withInstanceLock(name, async (recovered) => {
    const cfg = loadConfig(ctx.paths, name);
    const state = await instanceState(ctx, cfg);
    const cg = await cgroupsOf(ctx);
    // Taking the lock thawed what a killed snapshot had left frozen: that is what resume was for.
    if (!freeze && recovered.thawed && state.status === 'Running') return;
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
