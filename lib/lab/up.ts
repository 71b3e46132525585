import fs from 'node:fs';
import { TslxcError, errorText } from '../errors.js';
import type { Context } from '../state/context.js';
import { loadConfig } from '../state/config.js';
import { createInstance } from '../instance/create.js';
import { deleteInstance } from '../instance/manage.js';
import { updateInstance } from '../instance/configure.js';
import { startInstance } from '../instance/start.js';
import { instanceState } from '../instance/status.js';
import { findImage } from '../image/store.js';
import { resolveImage } from '../image/resolve.js';
import { gatewayDir, listGatewayUsers, putGatewayUser, removeGatewayUser, type GatewayUser } from '../gateway/users.js';
import { createNetwork, updateNetwork } from '../network/manage.js';
import { loadNetwork, networkExists } from '../network/store.js';
import { createSnapshot, listSnapshots } from '../instance/snapshot.js';
import { createVolume, listVolumes } from '../storage/volume.js';
import { usePool } from '../storage/driver.js';
import { locksDir } from '../state/paths.js';
import { withLock } from '../util/lock.js';
import { Reverter } from '../util/revert.js';
import { checkLabOnHost } from './check.js';
import { writeLabRecord } from './record.js';
import { desiredContainers, drift, labContainers, labMarker, mapLimit, START_SNAPSHOT, type DesiredContainer } from './plan.js';
import { volumeName, type LabSpec } from './schema.js';

/** What `up` reports as it goes: a container's step, or a lab-wide one (no container). */
export interface LabEvent {
  container?: string;
  step: 'image' | 'network' | 'volume' | 'create' | 'snapshot' | 'update' | 'start' | 'ready' | 'delete' | 'gateway' | 'failed';
  detail: string;
}

export interface UpOptions {
  /** containers made or started at once (default 4) */
  parallel?: number;
  /** delete the lab's containers the file no longer lists (otherwise they are left alone, with a note) */
  prune?: boolean;
  onEvent?: (e: LabEvent) => void;
}

export interface UpReport {
  /** one line per thing made or changed; empty when the lab already matched the file */
  changes: string[];
  /** containers that were already as the file says and running */
  unchanged: string[];
  notes: string[];
  failed: Array<{ what: string; error: string }>;
  seconds: number;
}

export const withLabLock = <T>(ctx: Context, lab: string, fn: () => Promise<T>) =>
  withLock(locksDir(ctx.paths), `lab-${lab}`, fn, { purpose: `lab "${lab}"`, timeoutMs: 30 * 60_000 });

/**
 * Makes the host match the lab file: the network, the volumes, each member's containers (created,
 * snapshotted before their first start, started), their gateway users. What is already right is
 * left alone. A container that fails is reported and the others go on; what was made stays
 * consistent (a container is either whole, with its start snapshot, or not there), so running up
 * again finishes the job.
 */
export async function labUp(ctx: Context, spec: LabSpec, opts: UpOptions = {}): Promise<UpReport> {
  checkLabOnHost(ctx, spec);
  return withLabLock(ctx, spec.name, async () => {
    const t0 = Date.now();
    const emit = opts.onEvent ?? (() => {});
    const report: UpReport = { changes: [], unchanged: [], notes: [], failed: [], seconds: 0 };
    // Recorded first: the server (the lab API, lab tokens' restrictions) follows what up applies.
    writeLabRecord(ctx.paths, spec);
    const change = (line: string, e?: LabEvent) => {
      report.changes.push(line);
      if (e) emit(e);
    };

    await ensureNetwork(ctx, spec, change, report);
    await ensureVolumes(ctx, spec, change);

    const want = desiredContainers(spec);
    const existing = new Map(labContainers(ctx, spec.name).map((c) => [c.name, c]));
    // Images are resolved (built the first time) once, before the parallel creates.
    const fingerprints = new Map<string, string>();
    for (const ref of new Set(want.filter((w) => !existing.has(w.name)).map((w) => w.image))) {
      emit({ step: 'image', detail: `image ${ref}` });
      const img = await resolveImage(ctx.paths, ref, {}, (phase, detail) => emit({ step: 'image', detail: `${ref}: ${phase} ${detail ?? ''}`.trim() }));
      fingerprints.set(ref, img.fingerprint);
    }

    // The first start runs alone: on cgroup v1 the first start of an installation makes the cgroup
    // prefix and sets its device policy, which the kernel refuses once another start has put a
    // container's cgroup below it (a race in the shared cgroup code, seen with parallel starts).
    let first: Promise<unknown> | undefined;
    const startOne = async <T>(fn: () => Promise<T>): Promise<T> => {
      if (first) {
        await first.catch(() => {});
        return fn();
      }
      const p = fn();
      first = p;
      return p;
    };
    const results = await mapLimit(want, opts.parallel ?? 4, async (w) => {
      const cfg = existing.get(w.name);
      let changed = false;
      const note = (line: string) => {
        changed = true;
        change(line);
      };
      if (!cfg) {
        await createLabContainer(ctx, w, fingerprints.get(w.image)!, emit);
        note(`created ${w.name}`);
      } else {
        const what = drift(cfg, w);
        if (what.length) {
          emit({ container: w.name, step: 'update', detail: what.join(', ') });
          await applyDesired(ctx, w);
          note(`updated ${w.name} (${what.join(', ')})`);
        }
        const img = findImage(ctx.paths, w.image);
        if (img && cfg.image?.fingerprint !== img.fingerprint) {
          report.notes.push(
            `${w.name} was made from image ${cfg.image?.alias ?? cfg.image?.fingerprint.slice(0, 12)}, the file now says ${w.image}: delete it ("tslxc delete --force ${w.name}") and run up again to remake it`,
          );
        }
        if (await ensureStartSnapshot(ctx, w.name, report)) note(`took the start snapshot of ${w.name}`);
      }
      if ((await startOne(() => startIfStopped(ctx, w.name, emit))) && cfg) note(`started ${w.name}`);
      if (!changed) report.unchanged.push(w.name);
      emit({ container: w.name, step: 'ready', detail: 'running' });
    });
    for (const r of results) {
      if (r.error === undefined) continue;
      report.failed.push({ what: r.item.name, error: errorText(r.error) });
      emit({ container: r.item.name, step: 'failed', detail: errorText(r.error) });
    }

    await pruneOrNote(ctx, spec, want, opts, report, change, emit);
    try {
      await syncGatewayUsers(ctx, spec, change, report);
    } catch (err) {
      report.failed.push({ what: 'gateway users', error: errorText(err) });
    }
    report.seconds = (Date.now() - t0) / 1000;
    return report;
  });
}

async function ensureNetwork(ctx: Context, spec: LabSpec, change: (l: string, e?: LabEvent) => void, report: UpReport): Promise<void> {
  const { name, config } = spec.network;
  if (!networkExists(ctx.paths, name)) {
    await createNetwork(ctx.paths, name, config, labMarker(spec.name));
    change(`created network ${name}`, { step: 'network', detail: `created network ${name}` });
    return;
  }
  const net = loadNetwork(ctx.paths, name);
  if (net.description !== labMarker(spec.name)) {
    report.notes.push(`network ${name} exists and was not made by this lab: it is used as it is (and kept by down)`);
    return;
  }
  // ipv4.address=auto was resolved to a subnet when the network was made: only a given one counts.
  const differs = Object.entries(config).filter(([k, v]) => !(k === 'ipv4.address' && v === 'auto') && net.config[k] !== v);
  if (differs.length) {
    await updateNetwork(ctx.paths, name, (n) => {
      for (const [k, v] of differs) n.config[k] = v;
    });
    change(`updated network ${name} (${differs.map(([k, v]) => `${k}=${v}`).join(', ')})`, { step: 'network', detail: `updated network ${name}` });
  }
}

async function ensureVolumes(ctx: Context, spec: LabSpec, change: (l: string, e?: LabEvent) => void): Promise<void> {
  for (const v of spec.volumes) {
    await usePool(ctx, v.pool);
    const have = new Set(listVolumes(ctx.paths, v.pool).map((x) => x.name));
    const names = v.scope === 'shared' ? [volumeName(spec.name, v)] : spec.members.map((m) => volumeName(spec.name, v, m.name));
    for (const n of names) {
      if (have.has(n)) continue;
      await createVolume(ctx, v.pool, n, labMarker(spec.name));
      change(`created volume ${v.pool}/${n}`, { step: 'volume', detail: `created volume ${v.pool}/${n}` });
    }
  }
}

/** create, give it its lab config and devices, snapshot it: all or nothing. */
async function createLabContainer(ctx: Context, w: DesiredContainer, fingerprint: string, emit: (e: LabEvent) => void): Promise<void> {
  await Reverter.run(async (revert) => {
    emit({ container: w.name, step: 'create', detail: 'creating' });
    await createInstance(ctx, fingerprint, w.name, { profiles: w.profiles, config: w.config });
    revert.add(() => deleteInstance(ctx, w.name, { force: true }));
    await applyDesired(ctx, w);
    emit({ container: w.name, step: 'snapshot', detail: 'start snapshot' });
    await createSnapshot(ctx, w.name, START_SNAPSHOT);
  });
}

async function applyDesired(ctx: Context, w: DesiredContainer): Promise<void> {
  await updateInstance(ctx, w.name, (cfg) => {
    const volatile = Object.entries(cfg.config).filter(([k]) => k.startsWith('volatile.'));
    cfg.profiles = [...w.profiles];
    cfg.config = { ...Object.fromEntries(volatile), ...w.config };
    cfg.devices = structuredClone(w.devices);
  });
}

/** A container a previous up left without its start snapshot (killed in between): taken now if it never ran. */
async function ensureStartSnapshot(ctx: Context, name: string, report: UpReport): Promise<boolean> {
  if (listSnapshots(ctx, name).some((s) => s.name === START_SNAPSHOT)) return false;
  const st = await instanceState(ctx, loadConfig(ctx.paths, name));
  if (st.status === 'Created') {
    await createSnapshot(ctx, name, START_SNAPSHOT);
    return true;
  }
  report.notes.push(`${name} has no start snapshot ("${START_SNAPSHOT}"), so "lab reset" cannot restore it`);
  return false;
}

/** Starts a container that is not running; true when it did. */
async function startIfStopped(ctx: Context, name: string, emit: (e: LabEvent) => void): Promise<boolean> {
  const st = await instanceState(ctx, loadConfig(ctx.paths, name));
  if (st.status === 'Running' || st.status === 'Frozen') return false;
  if (st.status === 'Error' && st.initPid) throw new TslxcError(`Container "${name}" is in an Error state`, st.reason);
  emit({ container: name, step: 'start', detail: 'starting' });
  await startInstance(ctx, name);
  return true;
}

async function pruneOrNote(
  ctx: Context,
  spec: LabSpec,
  want: DesiredContainer[],
  opts: UpOptions,
  report: UpReport,
  change: (l: string, e?: LabEvent) => void,
  emit: (e: LabEvent) => void,
): Promise<void> {
  const wanted = new Set(want.map((w) => w.name));
  const extra = labContainers(ctx, spec.name).filter((c) => !wanted.has(c.name));
  if (!extra.length) return;
  if (!opts.prune) {
    report.notes.push(
      `${extra.map((c) => c.name).join(', ')} ${extra.length > 1 ? 'are' : 'is'} no longer in the file: left alone ("lab up --prune" deletes ${extra.length > 1 ? 'them' : 'it'})`,
    );
    return;
  }
  const res = await mapLimit(extra, opts.parallel ?? 4, async (c) => {
    emit({ container: c.name, step: 'delete', detail: 'deleting (no longer in the file)' });
    await deleteInstance(ctx, c.name, { force: true });
    change(`deleted ${c.name} (no longer in the file)`);
  });
  for (const r of res) if (r.error !== undefined) report.failed.push({ what: r.item.name, error: errorText(r.error) });
}

/**
 * One gateway user per member: their keys and the containers that exist. Users of members the file
 * no longer lists are removed, whatever happens to their containers: access follows the file.
 */
async function syncGatewayUsers(ctx: Context, spec: LabSpec, change: (l: string, e?: LabEvent) => void, report: UpReport): Promise<void> {
  fs.mkdirSync(gatewayDir(ctx.paths), { recursive: true, mode: 0o700 });
  const have = new Map(listGatewayUsers(ctx.paths).map((u) => [u.name, u]));
  const existing = new Set(labContainers(ctx, spec.name).map((c) => c.name));
  for (const m of spec.members) {
    const user: GatewayUser = {
      name: m.name,
      keys: m.keys.map((k) => k.line),
      containers: m.containers.map((c) => c.name).filter((c) => existing.has(c)),
      lab: spec.name,
    };
    if (!m.keys.length) report.notes.push(`member ${m.name} has no public key: they cannot log in through the gateway`);
    const old = have.get(m.name);
    if (old && JSON.stringify(old) === JSON.stringify(user)) continue;
    await putGatewayUser(ctx.paths, user);
    change(`${old ? 'updated' : 'added'} gateway user ${m.name}`, { step: 'gateway', detail: `gateway user ${m.name}` });
  }
  const members = new Set(spec.members.map((m) => m.name));
  for (const u of have.values()) {
    if (u.lab === spec.name && !members.has(u.name)) {
      await removeGatewayUser(ctx.paths, u.name);
      change(`removed gateway user ${u.name} (no longer in the file)`, { step: 'gateway', detail: `removed gateway user ${u.name}` });
    }
  }
}
