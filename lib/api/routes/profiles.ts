import type { Context } from '../../state/context.js';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';
import { profileShape, profileWritable } from '../shapes/profile.js';
import {
  asClientError,
  body,
  checkIfMatch,
  created,
  deleteRoute,
  deviceMap,
  enc,
  etagOf,
  instanceUrls,
  optString,
  recursion,
  renameRoute,
  reqString,
  requireUnrestricted,
  stringMap,
} from './rest.js';

/**
 * /1.0/profiles: the profiles the CLI's `tslxc profile` manages, through the same library (its
 * per-profile lock, validation against every container using it, live apply to running ones).
 */

const lib = () => import('../../instance/profiles.js');
const url = (name: string) => `/1.0/profiles/${enc(name)}`;
const profile = { path: '/1.0/profiles/{name}', kind: 'profile', url };

async function shapeOf(req: ApiRequest, name: string) {
  const { loadProfile, usedBy } = await lib();
  const p = loadProfile(req.ctx.paths, name);
  return profileShape(p, instanceUrls(req, usedBy(req.ctx, name)));
}

async function current(ctx: Context, name: string) {
  const { loadProfile } = await lib();
  return loadProfile(ctx.paths, name);
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/1.0/profiles',
    async handler(req) {
      const { listProfiles } = await lib();
      const names = listProfiles(req.ctx.paths).map((p) => p.name);
      if (!recursion(req)) return sync(names.map(url));
      return sync(await Promise.all(names.map((n) => shapeOf(req, n))));
    },
  },
  {
    method: 'POST',
    path: '/1.0/profiles',
    async handler(req) {
      requireUnrestricted(req);
      const b = await body(req);
      const name = reqString(b, 'name');
      const { createProfile } = await lib();
      await asClientError(() =>
        createProfile(req.ctx, name, { description: optString(b, 'description'), config: stringMap(b.config, 'config'), devices: deviceMap(b.devices) }),
      );
      req.events.lifecycle('profile-created', url(name));
      return created(url(name));
    },
  },
  {
    method: 'GET',
    path: '/1.0/profiles/{name}',
    async handler(req) {
      const p = await current(req.ctx, req.params.name);
      return sync(await shapeOf(req, req.params.name), { etag: etagOf(profileWritable(p)) });
    },
  },
  {
    method: 'PUT',
    path: '/1.0/profiles/{name}',
    handler: (req) => update(req, false),
  },
  {
    method: 'PATCH',
    path: '/1.0/profiles/{name}',
    handler: (req) => update(req, true),
  },
  renameRoute(profile, async (req, from, to) => (await lib()).renameProfile(req.ctx, from, to)),
  deleteRoute(profile, async (req, name) => (await lib()).deleteProfile(req.ctx, name)),
];

/** PUT replaces description, config and devices; PATCH merges config and devices key by key. */
async function update(req: ApiRequest, merge: boolean) {
  requireUnrestricted(req);
  const name = req.params.name;
  const b = await body(req);
  const description = optString(b, 'description');
  const config = stringMap(b.config, 'config');
  const devices = deviceMap(b.devices);
  const { updateProfile } = await lib();
  checkIfMatch(req, etagOf(profileWritable(await current(req.ctx, name))));
  await asClientError(() =>
    updateProfile(req.ctx, name, (p) => {
      // Checked again under the profile's lock: a change between the GET and now is refused.
      if (req.headers['if-match'] !== undefined) checkIfMatch(req, etagOf(profileWritable(p)));
      if (merge) {
        if (description !== undefined) p.description = description;
        Object.assign(p.config, config ?? {});
        Object.assign(p.devices, devices ?? {});
      } else {
        p.description = description ?? '';
        p.config = config ?? {};
        p.devices = devices ?? {};
      }
      for (const [dn, d] of Object.entries(p.devices)) if (!d.type) throw new ApiError(400, `Device "${dn}" has no "type"`);
    }),
  );
  req.events.lifecycle('profile-updated', url(name));
  return sync({});
}

/** used_by on profiles (the client shows it in `lxc profile list`). */
export const extensions = ['profile_usedby'];
