import { errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { deleteInstance } from '../instance/manage.js';
import { removeLabGatewayUsers } from '../gateway/users.js';
import { deleteNetwork } from '../network/manage.js';
import { loadNetwork, networkExists } from '../network/store.js';
import { listPools } from '../storage/pool.js';
import { deleteVolume, listVolumes } from '../storage/volume.js';
import { labContainers, labMarker, mapLimit } from './plan.js';
import { removeLabRecord } from './record.js';
import type { LabSpec } from './schema.js';
import { withLabLock, type LabEvent } from './up.js';

export interface DownReport {
  changes: string[];
  notes: string[];
  failed: Array<{ what: string; error: string }>;
}

/**
 * Removes what the lab made: its containers (found by their user.lab key, so also those the file
 * no longer lists, and never anyone else's), its gateway users, its network when the lab made it,
 * and with `volumes` its volumes (kept by default: they hold the members' work).
 */
export async function labDown(
  ctx: Context,
  spec: LabSpec,
  opts: { volumes?: boolean; parallel?: number; onEvent?: (e: LabEvent) => void } = {},
): Promise<DownReport> {
  return withLabLock(ctx, spec.name, async () => {
    const report: DownReport = { changes: [], notes: [], failed: [] };
    const emit = opts.onEvent ?? (() => {});
    const res = await mapLimit(labContainers(ctx, spec.name), opts.parallel ?? 4, async (c) => {
      emit({ container: c.name, step: 'delete', detail: 'deleting' });
      await deleteInstance(ctx, c.name, { force: true });
      report.changes.push(`deleted ${c.name}`);
    });
    for (const r of res) if (r.error !== undefined) report.failed.push({ what: r.item.name, error: errorText(r.error) });

    for (const u of await removeLabGatewayUsers(ctx.paths, spec.name)) report.changes.push(`removed gateway user ${u}`);

    const net = spec.network.name;
    if (networkExists(ctx.paths, net)) {
      if (loadNetwork(ctx.paths, net).description === labMarker(spec.name)) {
        if (report.failed.length) report.notes.push(`network ${net} kept: some containers could not be deleted`);
        else {
          try {
            await deleteNetwork(ctx.paths, net);
            report.changes.push(`deleted network ${net}`);
          } catch (err) {
            report.failed.push({ what: `network ${net}`, error: errorText(err) });
          }
        }
      } else report.notes.push(`network ${net} kept: the lab did not make it`);
    }

    const kept: string[] = [];
    for (const pool of listPools(ctx.paths)) {
      let vols;
      try {
        vols = listVolumes(ctx.paths, pool.name).filter((v) => v.description === labMarker(spec.name));
      } catch {
        continue;
      }
      for (const v of vols) {
        if (!opts.volumes) {
          kept.push(`${pool.name}/${v.name}`);
          continue;
        }
        try {
          await deleteVolume(ctx, pool.name, v.name);
          report.changes.push(`deleted volume ${pool.name}/${v.name}`);
        } catch (err) {
          report.failed.push({ what: `volume ${pool.name}/${v.name}`, error: errorText(err) });
        }
      }
    }
    if (kept.length) report.notes.push(`volumes kept: ${kept.join(', ')} ("lab down --volumes" deletes them)`);
    if (!report.failed.length) removeLabRecord(ctx.paths, spec.name);
    return report;
  });
}
