import { ApiError, sync, type ApiRequest, type Route } from '../types.js';
import { networkShape, networkStateShape, networkWritable } from '../shapes/network.js';
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
  renameRoute,
  reqString,
  requireUnrestricted,
  stringMap,
} from './rest.js';

/**
 * /1.0/networks: tslxc's managed bridges, through the library `tslxc network` uses (its networks
 * lock; bridge, dnsmasq and nft brought up or torn down with the definition). Host interfaces
 * tslxc does not manage are not listed.
 */

const manage = () => import('../../network/manage.js');
const store = () => import('../../network/store.js');
const url = (name: string) => `/1.0/networks/${enc(name)}`;
const network = { path: '/1.0/networks/{name}', kind: 'network', url };

/** The library's "container X" / "profile Y" users as LXD's URLs; instances a caller may not see are left out. */
function usedByUrls(req: ApiRequest, users: string[]): string[] {
  const containers = users.filter((u) => u.startsWith('container ')).map((u) => u.slice('container '.length));
  const profiles = users.filter((u) => u.startsWith('profile ')).map((u) => `/1.0/profiles/${enc(u.slice('profile '.length))}`);
  return [...instanceUrls(req, [...new Set(containers)]), ...profiles];
}

async function shapeOf(req: ApiRequest, name: string) {
  const { loadNetwork } = await store();
  const { usedBy, runningOn } = await manage();
  const net = loadNetwork(req.ctx.paths, name);
  const users = [...usedBy(req.ctx.paths, name), ...runningOn(req.ctx.paths, name).map((c) => `container ${c}`)];
  return networkShape(net, usedByUrls(req, users));
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/1.0/networks',
    async handler(req) {
      const { listNetworkNames } = await store();
      const names = listNetworkNames(req.ctx.paths);
      if (!recursion(req)) return sync(names.map(url));
      return sync(await Promise.all(names.map((n) => shapeOf(req, n))));
    },
  },
  {
    method: 'POST',
    path: '/1.0/networks',
    async handler(req) {
      requireUnrestricted(req);
      const b = await body(req);
      const name = reqString(b, 'name');
      const type = optString(b, 'type');
      if (type && type !== 'bridge') throw new ApiError(400, `Network type "${type.slice(0, 40)}" is not supported: tslxc manages bridges`);
      const { createNetwork } = await manage();
      await asClientError(() => createNetwork(req.ctx.paths, name, stringMap(b.config, 'config') ?? {}, optString(b, 'description') ?? ''));
      req.events.lifecycle('network-created', url(name));
      return created(url(name));
    },
  },
  {
    method: 'GET',
    path: '/1.0/networks/{name}',
    async handler(req) {
      const { loadNetwork } = await store();
      const net = loadNetwork(req.ctx.paths, req.params.name);
      return sync(await shapeOf(req, req.params.name), { etag: etagOf(networkWritable(net)) });
    },
  },
  {
    method: 'GET',
    path: '/1.0/networks/{name}/state',
    async handler(req) {
      const { loadNetwork } = await store();
      loadNetwork(req.ctx.paths, req.params.name);
      const { linkState } = await import('../../network/host.js');
      const st = await linkState(req.params.name);
      // Defined but not up: the bridge comes with the first container using it.
      if (!st) throw new ApiError(404, `Network "${req.params.name}" has no bridge on the host now (it is made when a container uses it)`);
      return sync(networkStateShape(st));
    },
  },
  { method: 'PUT', path: '/1.0/networks/{name}', handler: (req) => update(req, false) },
  { method: 'PATCH', path: '/1.0/networks/{name}', handler: (req) => update(req, true) },
  renameRoute(network, async (req, from, to) => (await manage()).renameNetwork(req.ctx.paths, from, to)),
  deleteRoute(network, async (req, name) => (await manage()).deleteNetwork(req.ctx.paths, name)),
];

/** PUT replaces description and config; PATCH merges config key by key. */
async function update(req: ApiRequest, merge: boolean) {
  requireUnrestricted(req);
  const name = req.params.name;
  const b = await body(req);
  const description = optString(b, 'description');
  const config = stringMap(b.config, 'config');
  const { loadNetwork } = await store();
  checkIfMatch(req, etagOf(networkWritable(loadNetwork(req.ctx.paths, name))));
  const { updateNetwork } = await manage();
  await asClientError(() =>
    updateNetwork(req.ctx.paths, name, (net) => {
      if (req.headers['if-match'] !== undefined) checkIfMatch(req, etagOf(networkWritable(net)));
      if (merge) {
        if (description !== undefined) net.description = description;
        Object.assign(net.config, config ?? {});
      } else {
        net.description = description ?? '';
        net.config = config ?? {};
      }
    }),
  );
  req.events.lifecycle('network-updated', url(name));
  return sync({});
}

export const extensions = ['network', 'network_state'];
