import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Context } from '../instance/context.js';
import { configExists, loadConfig, type InstanceConfig } from '../instance/config.js';
import { identityFiles, validateHostname } from '../instance/create.js';
import { instanceState } from '../instance/status.js';
import { containerDir, containersDir, locksDir } from '../state/paths.js';
import { validateInstanceName } from '../util/names.js';
import { withLock } from '../util/lock.js';
import { Reverter } from '../util/revert.js';
import { readYaml, writeYamlAtomic } from '../util/yaml.js';
import { driverOf, target, writeRootFiles } from './instance.js';
import { readRecord, writeRecord } from './record.js';
import { snapshotDir } from './snapshot.js';

/**
 * `copy SRC[/SNAP] DST`: a new container on the same pool, copy-on-write where the driver can
 * (btrfs snapshot; overlay copies only the upper layer). The copy gets its own hostname (when the
 * source's was its name), machine-id, and no volatile.* keys (MAC addresses are made anew). It is
 * assembled in a temp dir renamed into place last: a crash leaves no half-made container.
 */
export async function copyInstance(ctx: Context, source: string, dst: string): Promise<InstanceConfig> {
  const [src, snap] = source.split('/', 2) as [string, string | undefined];
  validateInstanceName(src);
  validateInstanceName(dst);
  if (src === dst) throw new TslxcError(`Cannot copy "${src}"`, 'source and destination are the same');
  const [a, b] = [src, dst].sort();
  return ctx.withInstanceLock(a, () =>
    withLock(locksDir(ctx.paths), `ct-${b}`, async () => {
      const srcCfg = loadConfig(ctx.paths, src);
      if (configExists(ctx.paths, dst) || fs.existsSync(containerDir(ctx.paths, dst))) throw new TslxcError(`Cannot copy to "${dst}"`, 'a container of that name exists');
      let snapDir: string | undefined;
      let cfg: InstanceConfig = srcCfg;
      if (snap) {
        snapDir = snapshotDir(ctx, src, snap);
        if (!fs.existsSync(path.join(snapDir, 'snapshot.yaml'))) throw new TslxcError(`Snapshot "${src}/${snap}" not found`);
        cfg = readYaml<InstanceConfig>(path.join(snapDir, 'config.yaml'));
      } else {
        const state = await instanceState(ctx, srcCfg);
        if (state.status !== 'Stopped' && state.status !== 'Created') throw new TslxcError(`Cannot copy "${src}"`, `it is ${state.status.toLowerCase()}`, 'stop it first, or copy one of its snapshots');
      }
      const from = target(ctx, src);
      const d = driverOf(from.pool.driver);
      const tmp = path.join(containersDir(ctx.paths), `.copy-${dst}-${process.pid}`);
      return Reverter.run(async (revert) => {
        fs.rmSync(tmp, { recursive: true, force: true });
        fs.mkdirSync(tmp, { mode: 0o700 });
        revert.add(() => fs.rmSync(tmp, { recursive: true, force: true }));
        const record = readRecord(from.instDir);
        writeRecord(tmp, record);
        const to = { ...from, instDir: tmp, name: dst, record };
        revert.add(() => d.deleteRoot(to));
        if (snapDir) await d.copyFromSnapshot(from, snapDir, snap!, to);
        else await d.copyRoot(from, to);
        const hostname = cfg.hostname === src ? dst : cfg.hostname;
        validateHostname(hostname);
        writeRootFiles(ctx, dst, identityFiles(hostname, { newMachineId: true }), tmp);
        const config = Object.fromEntries(Object.entries(cfg.config ?? {}).filter(([k]) => !k.startsWith('volatile.')));
        const out: InstanceConfig = { ...cfg, name: dst, hostname, status: 'created', created_at: new Date().toISOString(), config };
        delete out.last_used_at;
        writeYamlAtomic(path.join(tmp, 'config.yaml'), out, 0o600);
        fs.renameSync(tmp, containerDir(ctx.paths, dst));
        return out;
      });
    }, { purpose: `container "${b}"` }),
  );
}
