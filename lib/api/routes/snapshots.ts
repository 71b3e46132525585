import { etagOf } from '../etag.js';
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
  // An expiry is not kept: a snapshot that would go by itself is refused rather than kept forever.
  if (typeof b.expires_at === 'string' && !/^0001-01-01T00:00:00/.test(b.expires_at)) throw new ApiError(400, 'Snapshot expiry is not supported');
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
      const made = await (await snapshotLib()).createSnapshot(req.ctx, name, snap);
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
  { method: 'DELETE', path: '/1.0/instances/{name}/snapshots/{snapshot}', handler: deleteSnap },
]);

export const extensions: string[] = [];
