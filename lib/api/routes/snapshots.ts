import fs from 'node:fs';
import path from 'node:path';
import { containersDir } from '../../state/paths.js';
import { checkIfMatch, etagOf } from '../etag.js';
import { ApiError, sync, type ApiRequest, type ApiResult, type Route } from '../types.js';
import { body, instanceUrl, recursionOf, requireInstance, withContainerPaths } from './instances.js';

/**
 * /1.0/instances/NAME/snapshots: LXD 5.0's snapshot endpoints over lib/instance/snapshot.ts, under
 * the container's lock as `tslxc snapshot` takes it. Restore is PUT /1.0/instances/NAME {restore}.
 */

const snapshotLib = () => import('../../instance/snapshot.js');
const shapes = () => import('../shapes/instance.js');

const snapshotUrl = (name: string, snap: string) => `${instanceUrl(name)}/snapshots/${encodeURIComponent(snap)}`;

async function requireSnapshot(req: ApiRequest, name: string): Promise<string> {
  const snap = req.params.snapshot;
  const { listSnapshots } = await snapshotLib();
  if (!listSnapshots(req.ctx, name).some((s) => s.name === snap)) throw new ApiError(404, 'Snapshot not found');
  return snap;
}

async function listSnaps(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { listSnapshots } = await snapshotLib();
  const infos = listSnapshots(req.ctx, name);
  if (recursionOf(req) === 0) return sync(infos.map((s) => snapshotUrl(name, s.name)));
  const { readSnapshot, profileLoader } = await shapes();
  const load = profileLoader(req.ctx);
  return sync(infos.map((s) => readSnapshot(req.ctx, name, s, load)));
}

async function createSnap(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const b = await body<{ name: string; stateful: boolean; expires_at: string | null }>(req);
  if (b.stateful === true) throw new ApiError(400, 'Stateful snapshots are not supported');
  if (b.name !== undefined && typeof b.name !== 'string') throw new ApiError(400, 'name must be a string');
  // As LXD: a time given (Go's zero time: never) wins over the instance's snapshots.expiry.
  const expiresAt = b.expires_at === undefined || b.expires_at === null ? undefined : expiryOf(b.expires_at);
  const { validateSnapshotName, listSnapshots } = await snapshotLib();
  const snap = b.name ? b.name : undefined;
  if (snap !== undefined) {
    try {
      validateSnapshotName(snap);
    } catch (err) {
      throw new ApiError(400, (err as Error).message);
    }
    if (listSnapshots(req.ctx, name).some((s) => s.name === snap)) throw new ApiError(409, `Snapshot "${snap}" already exists`);
  }
  const url = instanceUrl(name);
  const operation = req.operations.start({
    class: 'task',
    description: 'Snapshotting instance',
    resources: { instances: [url], ...(snap ? { instances_snapshots: [snapshotUrl(name, snap)] } : {}) },
    run: async () => {
      const made = await (await snapshotLib()).createSnapshot(req.ctx, name, snap, undefined, { expiresAt });
      req.events.lifecycle('instance-snapshot-created', snapshotUrl(name, made));
    },
  });
  return { type: 'async', operation };
}

async function getSnap(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const snap = await requireSnapshot(req, name);
  const { listSnapshots } = await snapshotLib();
  const { readSnapshot } = await shapes();
  const info = listSnapshots(req.ctx, name).find((s) => s.name === snap)!;
  const shaped = readSnapshot(req.ctx, name, info);
  return sync(shaped, { etag: snapshotEtag(shaped) });
}

/** A snapshot's expires_at: an RFC 3339 time, or null for never (Go's zero time, or any time before 1970). */
function expiryOf(v: unknown): Date | null {
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) || Number.isNaN(Date.parse(v)))
    throw new ApiError(400, 'expires_at must be an RFC 3339 time');
  const t = new Date(Date.parse(v));
  return t.getTime() <= 0 ? null : t;
}

/**
 * PUT (and PATCH) /1.0/instances/NAME/snapshots/SNAP: what a snapshot has that may change, its
 * expiry. A PUT without expires_at clears it, as LXD's (a Go zero time); a PATCH leaves it.
 */
async function updateSnap(req: ApiRequest, patch: boolean): Promise<ApiResult> {
  const name = await requireInstance(req);
  const snap = await requireSnapshot(req, name);
  const b = await body<{ expires_at: string | null }>(req);
  const { listSnapshots } = await snapshotLib();
  const { readSnapshot } = await shapes();
  checkIfMatch(
    req,
    snapshotEtag(
      readSnapshot(
        req.ctx,
        name,
        listSnapshots(req.ctx, name).find((s) => s.name === snap)!,
      ),
    ),
  );
  const given = b.expires_at !== undefined && b.expires_at !== null;
  if (patch && !given) return sync(null);
  const expiresAt = given ? expiryOf(b.expires_at) : null;
  const operation = req.operations.start({
    class: 'task',
    description: 'Updating snapshot',
    resources: { instances: [instanceUrl(name)], instances_snapshots: [snapshotUrl(name, snap)] },
    run: async () => {
      await (await snapshotLib()).setSnapshotExpiry(req.ctx, name, snap, expiresAt);
      req.events.lifecycle('instance-snapshot-updated', snapshotUrl(name, snap));
    },
  });
  return { type: 'async', operation };
}

/**
 * The expired snapshots of every instance, deleted (LXD's pruning task; `tslxc serve` runs this
 * each minute, lib/api/housekeeping.ts). Returns how many went.
 */
export async function pruneExpired(ctx: ApiRequest['ctx']): Promise<number> {
  const names = withExpiringSnapshots(ctx);
  if (!names.length) return 0;
  const { pruneExpiredSnapshots } = await snapshotLib();
  let n = 0;
  for (const name of names) n += (await pruneExpiredSnapshots(ctx, name).catch(() => [])).length;
  return n;
}

/** Whether a snapshot has an expiry: housekeeping may have work when it comes. */
export const hasExpiringSnapshots = (ctx: ApiRequest['ctx']): boolean => withExpiringSnapshots(ctx).length > 0;

/**
 * The instances with a snapshot that has an expiry, by a look at the files alone: the idle server
 * loads the snapshot library only when there is something to prune.
 */
function withExpiringSnapshots(ctx: ApiRequest['ctx']): string[] {
  const root = containersDir(ctx.paths);
  const ls = (dir: string): string[] => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  return ls(root).filter(
    (name) =>
      !name.startsWith('.') &&
      ls(path.join(root, name, 'snapshots')).some((snap) => {
        try {
          return fs.readFileSync(path.join(root, name, 'snapshots', snap, 'snapshot.yaml'), 'utf8').includes('expires_at:');
        } catch {
          return false;
        }
      }),
  );
}

/** LXD hashes what a snapshot's PUT changes: its expiry. */
function snapshotEtag(s: { expires_at: string }): string {
  return etagOf([s.expires_at]);
}

async function renameSnap(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const snap = await requireSnapshot(req, name);
  const b = await body<{ name: string; migration: boolean }>(req);
  if (b.migration) throw new ApiError(400, 'Migration is not supported');
  if (typeof b.name !== 'string' || !b.name) throw new ApiError(400, 'The new name is missing');
  const to = b.name;
  const { validateSnapshotName, listSnapshots } = await snapshotLib();
  try {
    validateSnapshotName(to);
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  if (listSnapshots(req.ctx, name).some((s) => s.name === to)) throw new ApiError(409, `Name "${to}" already in use`);
  const operation = req.operations.start({
    class: 'task',
    description: 'Renaming snapshot',
    resources: { instances: [instanceUrl(name)], instances_snapshots: [snapshotUrl(name, snap)] },
    run: async () => {
      await (await snapshotLib()).renameSnapshot(req.ctx, name, snap, to);
      req.events.lifecycle('instance-snapshot-renamed', snapshotUrl(name, to), { old_name: snap });
    },
  });
  return { type: 'async', operation };
}

async function deleteSnap(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const snap = await requireSnapshot(req, name);
  const operation = req.operations.start({
    class: 'task',
    description: 'Deleting snapshot',
    resources: { instances: [instanceUrl(name)], instances_snapshots: [snapshotUrl(name, snap)] },
    run: async () => {
      await (await snapshotLib()).deleteSnapshot(req.ctx, name, snap);
      req.events.lifecycle('instance-snapshot-deleted', snapshotUrl(name, snap));
    },
  });
  return { type: 'async', operation };
}

export const routes: Route[] = withContainerPaths([
  { method: 'GET', path: '/1.0/instances/{name}/snapshots', handler: listSnaps },
  { method: 'POST', path: '/1.0/instances/{name}/snapshots', handler: createSnap },
  { method: 'GET', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: getSnap },
  { method: 'POST', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: renameSnap },
  { method: 'PUT', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: (req) => updateSnap(req, false) },
  { method: 'PATCH', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: (req) => updateSnap(req, true) },
  { method: 'DELETE', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: deleteSnap },
]);

/** snapshots.expiry and expires_at on snapshots (PUT, and at creation). */
export const extensions: string[] = ['snapshot_expiry', 'snapshot_expiry_creation'];
