import { TslxcError, errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { loadConfig, saveConfig } from '../state/config.js';
import { startInstance } from '../instance/start.js';
import { stopInstance } from '../instance/stop.js';
import { instanceState } from '../instance/status.js';
import { listSnapshots, restoreSnapshot } from '../instance/snapshot.js';
import { labContainers, mapLimit, MEMBER_KEY, START_SNAPSHOT } from './plan.js';
import type { LabSummary } from './record.js';
import { withLabLock, type LabEvent } from './up.js';

export interface ResetResult {
  container: string;
  member: string;
  seconds?: number;
  error?: string;
}

/**
 * Puts members' containers back to their start state: stop (killed: whatever ran is thrown away
 * anyway), restore the snapshot taken before the first start, start. Today's config (limits,
 * devices, the stable MAC and address) is kept: only the root filesystem goes back.
 */
export async function labReset(
  ctx: Context,
  spec: Pick<LabSummary, 'name' | 'file' | 'members'>,
  members: string[],
  opts: { parallel?: number; onEvent?: (e: LabEvent) => void } = {},
): Promise<ResetResult[]> {
  if (!members.length) throw new TslxcError('Give the members to reset', undefined, `e.g. "tslxc lab reset ${spec.file} ${spec.members[0]?.name ?? 'MEMBER'}"`);
  for (const m of members) {
    if (!spec.members.some((x) => x.name === m))
      throw new TslxcError(`Member "${m}" is not in lab "${spec.name}"`, undefined, `see "tslxc lab members ${spec.file}"`);
  }
  return withLabLock(ctx, spec.name, async () => {
    const wanted = new Set(members);
    const targets = labContainers(ctx, spec.name).filter((c) => wanted.has(c.config[MEMBER_KEY]));
    const none = members.filter((m) => !targets.some((c) => c.config[MEMBER_KEY] === m));
    if (none.length) throw new TslxcError(`Cannot reset ${none.join(', ')}`, 'they have no containers', `run "tslxc lab up ${spec.file}" first`);
    for (const c of targets) {
      if (!listSnapshots(ctx, c.name).some((s) => s.name === START_SNAPSHOT)) {
        throw new TslxcError(`Cannot reset "${c.name}"`, `it has no start snapshot ("${START_SNAPSHOT}")`, 'delete it and run "lab up" again to remake it');
      }
    }
    const emit = opts.onEvent ?? (() => {});
    const res = await mapLimit(targets, opts.parallel ?? 4, async (c) => {
      const t0 = Date.now();
      const st = await instanceState(ctx, loadConfig(ctx.paths, c.name));
      if (st.status !== 'Stopped' && st.status !== 'Created') {
        emit({ container: c.name, step: 'start', detail: 'stopping' });
        await stopInstance(ctx, c.name, { force: true });
      }
      const before = loadConfig(ctx.paths, c.name);
      emit({ container: c.name, step: 'snapshot', detail: 'restoring' });
      await restoreSnapshot(ctx, c.name, START_SNAPSHOT);
      // Back to today's config as it was (it was valid before the restore, and holds volatile keys
      // that no config change may set).
      await ctx.withInstanceLock(c.name, async () => {
        saveConfig(ctx.paths, { ...loadConfig(ctx.paths, c.name), profiles: before.profiles, config: before.config, devices: before.devices });
      });
      emit({ container: c.name, step: 'start', detail: 'starting' });
      await startInstance(ctx, c.name);
      emit({ container: c.name, step: 'ready', detail: 'running' });
      return (Date.now() - t0) / 1000;
    });
    return res.map((r) => ({
      container: r.item.name,
      member: r.item.config[MEMBER_KEY],
      seconds: r.value,
      ...(r.error !== undefined ? { error: errorText(r.error) } : {}),
    }));
  });
}
