import { ApiError, sync, type ApiRequest, type Route } from '../types.js';
import { poolShape, poolWritable, volumeShape, volumeWritable, type ApiStorageVolume } from '../shapes/storage.js';
import {
  asClientError,
  body,
  checkIfMatch,
  created,
  deleteRoute,
  enc,
  etagOf,
  instanceUrls,
  optString,
  recursion,
  reqString,
  requireUnrestricted,
  stringMap,
} from './rest.js';

/**
 * /1.0/storage-pools and their volumes, through the library `tslxc storage` uses (the pools lock,
 * each pool's volumes lock, in-use refusals). A pool's volumes are its custom volumes and, as
 * LXD lists them, one "container" volume per instance whose root is on it.
 */

const pools = () => import('../../storage/pool.js');
const manage = () => import('../../storage/manage.js');
const volumes = () => import('../../storage/volume.js');
const poolUrl = (pool: string) => `/1.0/storage-pools/${enc(pool)}`;
const volUrl = (pool: string, type: string, name: string) => `${poolUrl(pool)}/volumes/${type}/${enc(name)}`;

async function poolObject(req: ApiRequest, name: string) {
  const { loadPool } = await pools();
  const { poolUsers } = await manage();
  const { driverOf } = await import('../../storage/driver.js');
  const { listVolumes } = await volumes();
  const { listProfiles } = await import('../../profile/store.js');
  const pool = loadPool(req.ctx.paths, name);
  let source: string | undefined;
  try {
    source = driverOf(pool.driver).source(req.ctx.paths, pool);
  } catch {
    /* a pool whose backing is gone still lists */
  }
  const profiles = listProfiles(req.ctx.paths)
    .filter((p) => Object.values(p.devices).some((d) => d.type === 'disk' && d.path === '/' && (d.pool || 'default') === name))
    .map((p) => `/1.0/profiles/${enc(p.name)}`);
  const usedBy = [...instanceUrls(req, poolUsers(req.ctx, name)), ...listVolumes(req.ctx.paths, name).map((v) => volUrl(name, 'custom', v.name)), ...profiles];
  return { pool, object: poolShape(pool, source, usedBy) };
}

/** The library's volume users (container names and `profile:NAME`) as URLs. */
function volumeUsedBy(req: ApiRequest, users: string[]): string[] {
  return [
    ...instanceUrls(
      req,
      users.filter((u) => !u.startsWith('profile:')),
    ),
    ...users.filter((u) => u.startsWith('profile:')).map((u) => `/1.0/profiles/${enc(u.slice('profile:'.length))}`),
  ];
}

async function poolVolumes(req: ApiRequest, pool: string, type?: string): Promise<ApiStorageVolume[]> {
  const { usePool } = await import('../../storage/driver.js');
  await usePool(req.ctx, pool);
  const { listVolumes, volumeUsers } = await volumes();
  const out: ApiStorageVolume[] = [];
  if (!type || type === 'custom') {
    for (const v of listVolumes(req.ctx.paths, pool)) out.push(volumeShape(v, 'custom', volumeUsedBy(req, volumeUsers(req.ctx.paths, pool, v.name))));
  }
  if (!type || type === 'container') {
    const { poolUsers } = await manage();
    const { loadConfig } = await import('../../state/config.js');
    const { allowsInstance } = await import('../access.js');
    for (const n of poolUsers(req.ctx, pool).filter((x) => allowsInstance(req.identity, x))) {
      let createdAt = '0001-01-01T00:00:00Z';
      try {
        createdAt = loadConfig(req.ctx.paths, n).created_at || createdAt;
      } catch {
        /* being deleted */
      }
      out.push(volumeShape({ name: n, created_at: createdAt }, 'container', instanceUrls(req, [n])));
    }
  }
  return out;
}

function checkType(type: string): void {
  if (!['custom', 'container'].includes(type)) throw new ApiError(404, `Unknown storage volume type "${type.slice(0, 40)}"`);
}

async function listVolumesRoute(req: ApiRequest, type?: string) {
  if (type) checkType(type);
  const vols = await poolVolumes(req, req.params.pool, type);
  if (!recursion(req)) return sync(vols.map((v) => volUrl(req.params.pool, v.type, v.name)));
  return sync(vols);
}

async function createVolumeRoute(req: ApiRequest, type = 'custom') {
  requireUnrestricted(req);
  const b = await body(req);
  const name = reqString(b, 'name');
  const t = optString(b, 'type') ?? type;
  if (t !== 'custom') throw new ApiError(400, `Only custom volumes can be created here (not "${t.slice(0, 40)}")`);
  const ct = optString(b, 'content_type');
  if (ct && ct !== 'filesystem') throw new ApiError(400, `Content type "${ct.slice(0, 40)}" is not supported: tslxc volumes are filesystems`);
  // The client always sends a source; an empty one (no type, no name) is a plain create.
  const src = (b.source ?? {}) as { type?: unknown; name?: unknown };
  if (src.type || src.name) throw new ApiError(400, 'Copying or migrating a volume through the API is not supported; create an empty one');
  const config = stringMap(b.config, 'config') ?? {};
  const { createVolume } = await volumes();
  await asClientError(() => createVolume(req.ctx, req.params.pool, name, optString(b, 'description'), config));
  req.events.lifecycle('storage-volume-created', volUrl(req.params.pool, 'custom', name));
  return sync({});
}

async function volumeObject(req: ApiRequest): Promise<ApiStorageVolume> {
  const { pool, type, name } = req.params;
  checkType(type);
  const v = (await poolVolumes(req, pool, type)).find((x) => x.name === name);
  if (!v) throw new ApiError(404, `Storage volume "${pool}/${type}/${name}" not found`);
  return v;
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/1.0/storage-pools',
    async handler(req) {
      const { listPools } = await pools();
      const names = listPools(req.ctx.paths).map((p) => p.name);
      if (!recursion(req)) return sync(names.map(poolUrl));
      return sync(await Promise.all(names.map(async (n) => (await poolObject(req, n)).object)));
    },
  },
  {
    method: 'POST',
    path: '/1.0/storage-pools',
    async handler(req) {
      requireUnrestricted(req);
      const b = await body(req);
      const name = reqString(b, 'name');
      const driver = reqString(b, 'driver');
      const { createPool } = await manage();
      await asClientError(() => createPool(req.ctx, name, driver, stringMap(b.config, 'config') ?? {}, optString(b, 'description')));
      req.events.lifecycle('storage-pool-created', poolUrl(name));
      return created(poolUrl(name));
    },
  },
  {
    method: 'GET',
    path: '/1.0/storage-pools/{pool}',
    async handler(req) {
      const { pool, object } = await poolObject(req, req.params.pool);
      return sync(object, { etag: etagOf(poolWritable(pool)) });
    },
  },
  { method: 'PUT', path: '/1.0/storage-pools/{pool}', handler: (req) => updatePool(req) },
  { method: 'PATCH', path: '/1.0/storage-pools/{pool}', handler: (req) => updatePool(req) },
  deleteRoute({ path: '/1.0/storage-pools/{pool}', kind: 'storage-pool', url: poolUrl }, async (req, name) => (await manage()).deletePool(req.ctx, name)),
  { method: 'GET', path: '/1.0/storage-pools/{pool}/volumes', handler: (req) => listVolumesRoute(req) },
  { method: 'POST', path: '/1.0/storage-pools/{pool}/volumes', handler: (req) => createVolumeRoute(req) },
  { method: 'GET', path: '/1.0/storage-pools/{pool}/volumes/{type}', handler: (req) => listVolumesRoute(req, req.params.type) },
  { method: 'POST', path: '/1.0/storage-pools/{pool}/volumes/{type}', handler: (req) => createVolumeRoute(req, req.params.type) },
  {
    method: 'GET',
    path: '/1.0/storage-pools/{pool}/volumes/{type}/{name}',
    async handler(req) {
      const v = await volumeObject(req);
      return sync(v, { etag: etagOf(volumeWritable(v)) });
    },
  },
  {
    method: 'POST',
    path: '/1.0/storage-pools/{pool}/volumes/{type}/{name}',
    async handler(req) {
      requireUnrestricted(req);
      const { pool, type, name } = req.params;
      if (type !== 'custom') throw new ApiError(400, 'Only custom volumes can be renamed here');
      const b = await body(req);
      const to = reqString(b, 'name');
      if (b.pool !== undefined && b.pool !== pool) throw new ApiError(400, 'Moving a volume to another pool is not supported');
      const { renameVolume } = await volumes();
      await asClientError(() => renameVolume(req.ctx, pool, name, to));
      req.events.lifecycle('storage-volume-renamed', volUrl(pool, 'custom', to), { old_name: name });
      return created(volUrl(pool, 'custom', to));
    },
  },
  { method: 'PUT', path: '/1.0/storage-pools/{pool}/volumes/{type}/{name}', handler: (req) => updateVolumeRoute(req, false) },
  { method: 'PATCH', path: '/1.0/storage-pools/{pool}/volumes/{type}/{name}', handler: (req) => updateVolumeRoute(req, true) },
  {
    method: 'DELETE',
    path: '/1.0/storage-pools/{pool}/volumes/{type}/{name}',
    async handler(req) {
      requireUnrestricted(req);
      const { pool, type, name } = req.params;
      if (type !== 'custom') throw new ApiError(400, `A ${type.slice(0, 20)} volume goes with its instance: delete the instance`);
      const { deleteVolume } = await volumes();
      await asClientError(() => deleteVolume(req.ctx, pool, name));
      req.events.lifecycle('storage-volume-deleted', volUrl(pool, 'custom', name));
      return sync({});
    },
  },
];

/** A custom volume's PUT replaces description and config; PATCH merges config key by key (`lxc storage volume set/edit`). */
async function updateVolumeRoute(req: ApiRequest, merge: boolean) {
  requireUnrestricted(req);
  const { pool, type, name } = req.params;
  checkType(type);
  if (type !== 'custom') throw new ApiError(400, `A ${type.slice(0, 20)} volume is its instance's root: change the instance instead`);
  const b = await body(req);
  const description = optString(b, 'description');
  const config = stringMap(b.config, 'config');
  const { updateVolume } = await volumes();
  await asClientError(() =>
    updateVolume(req.ctx, pool, name, (current) => {
      // Checked under the volumes lock: a change between the GET and now is refused.
      checkIfMatch(req, etagOf(volumeWritable({ config: { ...current.config }, description: current.description })));
      const next = merge ? { ...current.config, ...(config ?? {}) } : { ...(config ?? {}) };
      // An empty value unsets the key, as in LXD (`lxc storage volume unset` sends one).
      for (const [k, v] of Object.entries(next)) if (v === '') delete next[k];
      return { description: merge ? (description ?? current.description) : (description ?? ''), config: next };
    }),
  );
  req.events.lifecycle('storage-volume-updated', volUrl(pool, 'custom', name));
  return sync({});
}

/** PUT and PATCH change what `tslxc storage set` can: the description and the driver's settable keys. */
async function updatePool(req: ApiRequest) {
  requireUnrestricted(req);
  const name = req.params.pool;
  const b = await body(req);
  const { loadPool } = await pools();
  const pool = loadPool(req.ctx.paths, name);
  checkIfMatch(req, etagOf(poolWritable(pool)));
  const changes: Record<string, string> = {};
  const description = optString(b, 'description');
  if (description !== undefined && description !== (pool.description ?? '')) changes.description = description;
  for (const [k, v] of Object.entries(stringMap(b.config, 'config') ?? {})) {
    if (k !== 'source' && String(pool.config[k] ?? '') !== v) changes[k] = v;
  }
  if (Object.keys(changes).length) {
    const { setPool } = await manage();
    await asClientError(() => setPool(req.ctx, name, changes));
    req.events.lifecycle('storage-pool-updated', poolUrl(name));
  }
  return sync({});
}

export const extensions = ['storage', 'storage_api_volume_rename'];
