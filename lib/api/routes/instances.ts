import crypto from 'node:crypto';
import { allowsInstance } from '../access.js';
import { checkIfMatch } from '../etag.js';
import { ApiError, sync, type ApiRequest, type ApiResult, type Route } from '../types.js';

/**
 * /1.0/instances: LXD 5.0's instance endpoints over tslxc's library (lib/instance), the one the CLI
 * uses, with its locks: the CLI and the API change the same containers side by side. The library
 * is loaded inside the handlers, so an idle server does not carry it. A restricted certificate
 * meets an instance it may not see as if it did not exist (404), and creates only names it matches.
 */

const lib = {
  shapes: () => import('../shapes/instance.js'),
  filter: () => import('../filter.js'),
  config: () => import('../../state/config.js'),
  create: () => import('../../instance/create.js'),
  configure: () => import('../../instance/configure.js'),
  manage: () => import('../../instance/manage.js'),
  start: () => import('../../instance/start.js'),
  stop: () => import('../../instance/stop.js'),
  snapshot: () => import('../../instance/snapshot.js'),
  status: () => import('../../instance/status.js'),
  names: () => import('../../util/names.js'),
  devices: () => import('../../device/registry.js'),
};

export const instanceUrl = (name: string) => `/1.0/instances/${encodeURIComponent(name)}`;

/** A listing under /1.0/containers (pylxd 2.2's path) names its items there, as LXD 5.0 does. */
const listedUrl = (req: ApiRequest, name: string) =>
  req.path.startsWith('/1.0/containers') ? `/1.0/containers/${encodeURIComponent(name)}` : instanceUrl(name);

/**
 * The same routes under /1.0/containers, the path before the `instances` extension, which LXD 5.0
 * still serves and pylxd 2.2 (Debian 12's) uses for everything.
 */
export function withContainerPaths(list: Route[]): Route[] {
  return [...list, ...list.map((r) => ({ ...r, path: r.path.replace(/^\/1\.0\/instances/, '/1.0/containers') }))];
}

/** The instance of the path, or 404: missing, or hidden from a restricted caller. */
export async function requireInstance(req: ApiRequest, name = req.params.name): Promise<string> {
  const { isInstanceName } = await lib.names();
  const { configExists } = await lib.config();
  if (!isInstanceName(name) || !allowsInstance(req.identity, name) || !configExists(req.ctx.paths, name)) {
    // What the list shows is there: a rename a killed tslxc committed (under the new name), and a
    // dir whose create was killed before its config was written (an Error that a delete removes).
    if (isInstanceName(name) && allowsInstance(req.identity, name) && (await lib.config()).listNames(req.ctx.paths).includes(name)) return name;
    throw new ApiError(404, 'Instance not found');
  }
  return name;
}

/** `recursion` as LXD reads it: 0 unless a number is given. */
export function recursionOf(req: ApiRequest): number {
  const r = Number(req.query.get('recursion') ?? '0');
  return Number.isInteger(r) && r > 0 ? r : 0;
}

/** An object body, or 400: a route never works on a malformed request. */
export async function body<T extends object>(req: ApiRequest): Promise<Partial<T>> {
  const b = await req.json<unknown>();
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new ApiError(400, 'The request body must be a JSON object');
  return b as Partial<T>;
}

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `${what} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new ApiError(400, `${what}: "${k}" must be a string`);
    out[k] = x;
  }
  return out;
}

function devicesOf(v: unknown): Record<string, Record<string, string>> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'devices must be an object of devices');
  const out: Record<string, Record<string, string>> = {};
  for (const [k, d] of Object.entries(v)) out[k] = stringMap(d, `device "${k}"`) ?? {};
  return out;
}

function profilesOf(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((p) => typeof p !== 'string')) throw new ApiError(400, 'profiles must be a list of names');
  return v as string[];
}

/** A TslxcError without a kind is the caller's mistake here (a key, a value, a state): 400, not 500. */
function asClientError(err: unknown): unknown {
  if (err instanceof Error && err.name === 'TslxcError' && !(err as { kind?: string }).kind) return new ApiError(400, err.message);
  return err;
}

async function check<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asClientError(err);
  }
}

// ---- the collection

async function listInstances(req: ApiRequest): Promise<ApiResult> {
  const recursion = recursionOf(req);
  const filter = req.query.get('filter') ?? '';
  const visible = (n: string) => allowsInstance(req.identity, n);
  if (recursion === 0 && !filter.trim()) {
    const { listNames } = await lib.config();
    return sync(
      listNames(req.ctx.paths)
        .filter(visible)
        .map((n) => listedUrl(req, n)),
    );
  }
  const { readInstances } = await lib.shapes();
  const f = await lib.filter();
  const clauses = filter.trim() ? f.parseFilter(filter) : [];
  const all = recursion >= 2 ? await readInstances(req.ctx, { full: true, visible }) : await readInstances(req.ctx, { full: false, visible });
  const kept = clauses.length ? (all as object[]).filter((i) => f.matches(i, clauses)) : all;
  return sync(recursion === 0 ? (kept as Array<{ name: string }>).map((i) => listedUrl(req, i.name)) : kept);
}

interface InstancesPost {
  name: string;
  source: {
    type?: string;
    alias?: string;
    fingerprint?: string;
    server?: string;
    properties?: Record<string, string>;
    /** copy: "c1" or "c1/snap0" */
    source?: string;
    instance_only?: boolean;
    live?: boolean;
    refresh?: boolean;
  };
  profiles: string[];
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  type: string;
  ephemeral: boolean;
  description: string;
}

/** LXD names an instance the client did not name; so does this, in its own style. */
function generatedName(): string {
  return `c-${crypto.randomBytes(4).toString('hex')}`;
}

function flagOf(v: unknown, what: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `${what} must be a boolean`);
  return v;
}

function textOf(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `${what} must be a string`);
  return v;
}

/** What a create makes the instance from: a local image, nothing, or a local instance or snapshot. */
type Origin = { type: 'image'; ref: string } | { type: 'none' } | { type: 'copy'; from: string; instanceOnly: boolean };

async function originOf(req: ApiRequest, source: InstancesPost['source']): Promise<Origin> {
  switch (source.type) {
    case 'image': {
      if (source.server) throw new ApiError(400, 'Images from a remote server are not supported; import the image first ("tslxc image import")');
      const ref = source.alias || source.fingerprint;
      if (typeof ref !== 'string' || !ref) throw new ApiError(400, 'source needs an alias or a fingerprint');
      return { type: 'image', ref };
    }
    case 'none':
      return { type: 'none' };
    case 'copy': {
      if (typeof source.source !== 'string' || !source.source) throw new ApiError(400, 'A copy needs source.source (an instance, or INSTANCE/SNAPSHOT)');
      if (source.refresh === true) throw new ApiError(400, 'Refreshing a copy is not supported');
      const [from, snap] = source.source.split('/', 2);
      // A source the caller may not see does not exist, as everywhere else.
      await requireInstance(req, from);
      if (snap !== undefined) {
        const { listSnapshots } = await lib.snapshot();
        if (!listSnapshots(req.ctx, from).some((s) => s.name === snap)) throw new ApiError(404, 'Snapshot not found');
      }
      return { type: 'copy', from: source.source, instanceOnly: flagOf(source.instance_only, 'source.instance_only') ?? false };
    }
    case 'migration':
      throw new ApiError(400, 'Migration from another server is not supported; export the instance there and import it here as an image');
    default:
      throw new ApiError(400, `Source type "${String(source.type ?? '')}" is not supported (use "image", "none" or "copy")`);
  }
}

async function createInstance(req: ApiRequest): Promise<ApiResult> {
  const b = await body<InstancesPost>(req);
  const { validateInstanceName } = await lib.names();
  const name = b.name === undefined || b.name === '' ? generatedName() : await check(() => validateInstanceName(b.name));
  // Creating is no seeing: a name outside the caller's glob is refused, and says so.
  if (!allowsInstance(req.identity, name)) throw new ApiError(403, `Certificate "${req.identity.name}" may not create instance "${name}"`);
  if (b.type !== undefined && b.type !== '' && b.type !== 'container')
    throw new ApiError(400, `Instance type "${String(b.type)}" is not supported (containers only)`);
  const ephemeral = flagOf(b.ephemeral, 'ephemeral');
  const description = textOf(b.description, 'description');
  const source = (b.source ?? {}) as InstancesPost['source'];
  if (typeof source !== 'object' || source === null || Array.isArray(source)) throw new ApiError(400, 'source must be an object');
  const profiles = profilesOf(b.profiles);
  const config = stringMap(b.config, 'config');
  const devices = devicesOf(b.devices);
  const origin = await originOf(req, source);
  const { configExists, listNames } = await lib.config();
  // A dir a killed create left is listed (as an Error) and so taken, as the library's create finds.
  if (configExists(req.ctx.paths, name) || listNames(req.ctx.paths).includes(name)) throw new ApiError(409, `Instance "${name}" already exists`);
  if (devices) {
    const { validateDevice } = await lib.devices();
    await check(() => {
      for (const [dn, d] of Object.entries(devices)) validateDevice(dn, d);
    });
  }
  const url = instanceUrl(name);
  const operation = req.operations.start({
    class: 'task',
    description: 'Creating instance',
    resources: { instances: [url] },
    run: async () => {
      let made: string;
      if (origin.type === 'copy') {
        // As LXD: the copy has the source's config, devices and profiles, with the request's on top
        // (`lxc copy` sends the source's own, derived keys included: those stay the copy's).
        const { copyInstance } = await import('../../instance/copy.js');
        made = (await copyInstance(req.ctx, origin.from, name, { instanceOnly: origin.instanceOnly })).name;
      } else {
        const create = await lib.create();
        // The root disk's pool (`lxc launch -s POOL`) decides where the root is made, as the
        // CLI's --storage: set afterwards with the devices, it would name a pool the root is not on.
        const { rootDiskOf } = await import('../../storage/disk.js');
        const storage = (devices && rootDiskOf(devices)?.pool) || undefined;
        const opts = { profiles, config, description, ephemeral, storage };
        made = (origin.type === 'image' ? await create.createInstance(req.ctx, origin.ref, name, opts) : await create.createEmptyInstance(req.ctx, name, opts))
          .name;
      }
      const copied = origin.type === 'copy' && (config || profiles || description !== undefined || ephemeral !== undefined);
      if ((devices && Object.keys(devices).length) || copied) {
        // Set under the lock as `config device add` sets them; a refused change removes the
        // container again, so a failed create leaves nothing.
        try {
          const { updateInstance, setDescription } = await lib.configure();
          await updateInstance(req.ctx, made, (c) => {
            if (origin.type === 'copy') {
              if (config) for (const [k, v] of Object.entries(config)) if (!k.startsWith('image.') && !k.startsWith('volatile.')) c.config[k] = v;
              if (devices) c.devices = { ...c.devices, ...devices };
              if (profiles) c.profiles = [...profiles];
              if (description !== undefined) setDescription(c, description);
              if (ephemeral !== undefined) setEphemeral(c, ephemeral);
            } else if (devices) c.devices = devices;
          });
        } catch (err) {
          await (await lib.manage()).deleteInstance(req.ctx, made, { force: true }).catch(() => {});
          throw err;
        }
      }
      req.events.lifecycle('instance-created', url);
    },
  });
  return { type: 'async', operation };
}

/** The config keeps the flag only when set. */
function setEphemeral(c: { ephemeral?: boolean }, on: boolean): void {
  if (on) c.ephemeral = true;
  else delete c.ephemeral;
}

// ---- one instance

async function getInstance(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { readInstance } = await lib.shapes();
  const { instance, etag } = await readInstance(req.ctx, name, { full: recursionOf(req) >= 1, disk: recursionOf(req) >= 1 });
  return sync(instance, { etag });
}

/** If-Match as LXD checks it: absent passes; otherwise it must be the current ETag (412). */
async function checkEtag(req: ApiRequest, name: string): Promise<void> {
  const match = req.headers['if-match'];
  if (match === undefined || match === '') return;
  const { readInstance } = await lib.shapes();
  checkIfMatch(req, (await readInstance(req.ctx, name)).etag);
}

interface InstancePut {
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles: string[];
  restore: string;
  description: string;
  architecture: string;
  ephemeral: boolean;
  stateful: boolean;
}

/**
 * The config a PUT or PATCH asks for, as tslxc keeps it: the keys LXD shows that tslxc derives
 * (image.*, volatile.base_image, volatile.last_state.power) are dropped whatever their value, and
 * tslxc's own volatile keys stay as they are (they are its state, not the client's).
 */
async function ownConfig(asked: Record<string, string>, current: Record<string, string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asked)) if (!k.startsWith('image.') && !k.startsWith('volatile.')) out[k] = v;
  for (const [k, v] of Object.entries(current)) if (k.startsWith('volatile.')) out[k] = v;
  return out;
}

async function updateInstance(req: ApiRequest, patch: boolean): Promise<ApiResult> {
  const name = await requireInstance(req);
  const b = await body<InstancePut>(req);
  await checkEtag(req, name);
  const url = instanceUrl(name);
  if (!patch && typeof b.restore === 'string' && b.restore !== '') {
    // The client names the snapshot in full ("c1/snap0"), as LXD keeps it.
    const snap = b.restore.startsWith(`${name}/`) ? b.restore.slice(name.length + 1) : b.restore;
    const operation = req.operations.start({
      class: 'task',
      description: 'Restoring snapshot',
      resources: { instances: [url], instances_snapshots: [`${url}/snapshots/${encodeURIComponent(snap)}`] },
      run: async () => {
        // As LXD: a running instance is stopped for the restore and started again after it, here
        // under one hold of its lock (lib/instance/snapshot.ts).
        try {
          await (await lib.snapshot()).restoreSnapshot(req.ctx, name, snap);
        } catch (err) {
          throw asClientError(err);
        }
        req.events.lifecycle('instance-restored', url, { snapshot: snap });
      },
    });
    return { type: 'async', operation };
  }
  const ephemeral = flagOf(b.ephemeral, 'ephemeral');
  const description = textOf(b.description, 'description');
  const config = stringMap(b.config, 'config');
  const devices = devicesOf(b.devices);
  const profiles = profilesOf(b.profiles);
  if (profiles) {
    const { profileExists } = await import('../../profile/store.js');
    for (const p of profiles) if (!profileExists(req.ctx.paths, p)) throw new ApiError(400, `Profile "${p}" not found`);
  }
  const operation = req.operations.start({
    class: 'task',
    description: 'Updating instance',
    resources: { instances: [url] },
    run: async () => {
      const { updateInstance, setDescription } = await lib.configure();
      const asked = config ?? {};
      const next = await ownConfigFor(req, name, asked, patch);
      await updateInstance(req.ctx, name, (cfg) => {
        cfg.config = patch ? { ...cfg.config, ...next } : next;
        if (patch) {
          if (devices) cfg.devices = { ...cfg.devices, ...devices };
        } else {
          cfg.devices = devices ?? {};
        }
        if (profiles) cfg.profiles = [...profiles];
        else if (!patch) cfg.profiles = [];
        // A PUT replaces them (absent: none, not ephemeral), a PATCH only what it names, as LXD.
        if (description !== undefined || !patch) setDescription(cfg, description ?? '');
        if (ephemeral !== undefined || !patch) setEphemeral(cfg, ephemeral ?? false);
      });
      req.events.lifecycle('instance-updated', url);
    },
  });
  return { type: 'async', operation };
}

async function ownConfigFor(req: ApiRequest, name: string, asked: Record<string, string>, patch: boolean): Promise<Record<string, string>> {
  const current = (await lib.config()).loadConfig(req.ctx.paths, name).config ?? {};
  const next = await ownConfig(asked, current);
  if (patch) for (const k of Object.keys(next)) if (k.startsWith('volatile.')) delete next[k];
  return next;
}

async function postInstance(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const b = await body<{ name: string; migration: boolean; live: boolean }>(req);
  if (b.migration) throw new ApiError(400, 'Migration is not supported');
  const { validateInstanceName } = await lib.names();
  const to = await check(() => validateInstanceName(b.name));
  if (!allowsInstance(req.identity, to)) throw new ApiError(403, `Certificate "${req.identity.name}" may not name an instance "${to}"`);
  const { configExists } = await lib.config();
  if (configExists(req.ctx.paths, to)) throw new ApiError(409, `Name "${to}" already in use`);
  const operation = req.operations.start({
    class: 'task',
    description: 'Renaming instance',
    resources: { instances: [instanceUrl(name)] },
    run: async () => {
      await (await lib.manage()).renameInstance(req.ctx, name, to);
      req.events.lifecycle('instance-renamed', instanceUrl(to), { old_name: name });
    },
  });
  return { type: 'async', operation };
}

async function deleteInstance(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { readState } = await lib.shapes();
  const st = await readState(req.ctx, name);
  // As LXD: a running instance is stopped first by the client (`lxc delete -f` does).
  if (st.status === 'Running' || st.status === 'Frozen') throw new ApiError(400, 'Instance is running');
  const url = instanceUrl(name);
  const operation = req.operations.start({
    class: 'task',
    description: 'Deleting instance',
    resources: { instances: [url] },
    run: async () => {
      await (await lib.manage()).deleteInstance(req.ctx, name);
      req.events.lifecycle('instance-deleted', url);
    },
  });
  return { type: 'async', operation };
}

// ---- state

async function getState(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { readState } = await lib.shapes();
  return sync(await readState(req.ctx, name, { disk: true }));
}

interface StatePut {
  action: string;
  timeout: number;
  force: boolean;
  stateful: boolean;
}

const ACTIONS: Record<string, { description: string; event: string }> = {
  start: { description: 'Starting instance', event: 'instance-started' },
  stop: { description: 'Stopping instance', event: 'instance-stopped' },
  restart: { description: 'Restarting instance', event: 'instance-restarted' },
  freeze: { description: 'Freezing instance', event: 'instance-paused' },
  unfreeze: { description: 'Unfreezing instance', event: 'instance-resumed' },
};

/** Runs a state change on one instance under its lock, as the CLI's verb of the same name does. */
export async function changeState(req: ApiRequest, name: string, put: Partial<StatePut>): Promise<void> {
  const ctx = req.ctx;
  // LXD's -1 (the client's default) is "no limit of the client's": tslxc's own default applies.
  const timeout = typeof put.timeout === 'number' && put.timeout >= 0 ? put.timeout : undefined;
  const force = put.force === true;
  switch (put.action) {
    case 'start':
      await (await lib.start()).startInstance(ctx, name);
      break;
    case 'stop': {
      // A forced stop of what does not run (a create that a killed server left in Error) has
      // nothing to do: `lxc delete -f` asks for one before its delete.
      const { status } = await (await lib.shapes()).readState(ctx, name, {});
      if (force && status !== 'Running' && status !== 'Frozen') break;
      // An ephemeral instance is deleted by its stop, under the same lock.
      const { deleted } = await (await import('../../instance/ephemeral.js')).stopInstance(ctx, name, { force, timeout });
      if (deleted) req.events.lifecycle('instance-deleted', instanceUrl(name));
      break;
    }
    case 'restart': {
      const { stopLocked } = await lib.stop();
      const { startLocked } = await lib.start();
      await ctx.withInstanceLock(name, async () => {
        await stopLocked(ctx, name, { force, timeout });
        await startLocked(ctx, name);
      });
      break;
    }
    case 'freeze':
    case 'unfreeze':
      await (await lib.manage()).freezeInstance(ctx, name, put.action === 'freeze');
      break;
  }
}

export function validateStatePut(put: Partial<StatePut>): void {
  if (typeof put.action !== 'string' || !Object.hasOwn(ACTIONS, put.action)) throw new ApiError(400, `Unknown action "${String(put.action ?? '')}"`);
  if (put.stateful === true) throw new ApiError(400, 'Stateful stop and start are not supported');
  if (put.timeout !== undefined && typeof put.timeout !== 'number') throw new ApiError(400, 'timeout must be a number');
  if (put.force !== undefined && typeof put.force !== 'boolean') throw new ApiError(400, 'force must be a boolean');
}

async function putState(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const put = await body<StatePut>(req);
  validateStatePut(put);
  const { description, event } = ACTIONS[put.action!];
  const url = instanceUrl(name);
  const operation = req.operations.start({
    class: 'task',
    description,
    resources: { instances: [url] },
    run: async () => {
      await changeState(req, name, put);
      req.events.lifecycle(event, url);
    },
  });
  return { type: 'async', operation };
}

/** The ephemeral instances. The configs are read as text: the idle server loads the library only when one is ephemeral. */
export async function ephemeralInstances(ctx: ApiRequest['ctx']): Promise<string[]> {
  const { containersDir, containerConfigFile } = await import('../../state/paths.js');
  const fs = await import('node:fs');
  let names: string[];
  try {
    names = fs.readdirSync(containersDir(ctx.paths)).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.filter((n) => {
    try {
      return /^ephemeral: true$/m.test(fs.readFileSync(containerConfigFile(ctx.paths, n), 'utf8'));
    } catch {
      return false;
    }
  });
}

/** Ephemeral instances that stopped by themselves (a poweroff inside), deleted: housekeeping. */
export async function sweepStopped(ctx: ApiRequest['ctx']): Promise<void> {
  const ephemeral = await ephemeralInstances(ctx);
  if (ephemeral.length) await (await import('../../instance/ephemeral.js')).sweepEphemeral(ctx, ephemeral);
}

/** Which instances a bulk action applies to, by status (LXD's instancesPut skips the others). */
const BULK_APPLIES: Record<string, (status: string) => boolean> = {
  start: (s) => s !== 'Running',
  stop: (s) => s === 'Running' || s === 'Frozen',
  restart: (s) => s === 'Running' || s === 'Frozen',
  freeze: (s) => s === 'Running',
  unfreeze: (s) => s === 'Frozen',
};

/**
 * PUT /1.0/instances {state: {action, timeout, force}}: one state change on every instance the
 * caller sees (`filter` narrows them, as on the list) whose state it changes, each under its own
 * lock and all at once, as LXD's `instance_bulk_state_change`. One operation; its error lists the
 * instances that failed.
 */
async function bulkState(req: ApiRequest): Promise<ApiResult> {
  const b = await body<{ state: Partial<StatePut> }>(req);
  if (typeof b.state !== 'object' || b.state === null || Array.isArray(b.state)) throw new ApiError(400, 'state must be an object');
  const put = b.state;
  validateStatePut(put);
  const { description } = ACTIONS[put.action!];
  const filter = req.query.get('filter') ?? '';
  const { readInstances } = await lib.shapes();
  const f = await lib.filter();
  const clauses = filter.trim() ? f.parseFilter(filter) : [];
  const all = await readInstances(req.ctx, { full: false, visible: (n) => allowsInstance(req.identity, n) });
  const names = all.filter((i) => (!clauses.length || f.matches(i, clauses)) && BULK_APPLIES[put.action!](i.status)).map((i) => i.name);
  const { event } = ACTIONS[put.action!];
  const operation = req.operations.start({
    class: 'task',
    description: description.replace(/instance$/, 'instances'),
    resources: names.length ? { instances: names.map(instanceUrl) } : {},
    run: async () => {
      const results = await Promise.allSettled(
        names.map(async (name) => {
          await changeState(req, name, put);
          req.events.lifecycle(event, instanceUrl(name));
        }),
      );
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [` - Instance: ${names[i]}: ${(r.reason as Error).message}`] : []));
      if (failed.length) throw new Error(`The following instances failed to update state:\n${failed.join('\n')}`);
    },
  });
  return { type: 'async', operation };
}

export const routes: Route[] = withContainerPaths([
  { method: 'PUT', path: '/1.0/instances', handler: bulkState },
  { method: 'GET', path: '/1.0/instances', handler: listInstances },
  { method: 'POST', path: '/1.0/instances', handler: createInstance },
  { method: 'GET', path: '/1.0/instances/{name}', handler: getInstance },
  { method: 'PUT', path: '/1.0/instances/{name}', handler: (req) => updateInstance(req, false) },
  { method: 'PATCH', path: '/1.0/instances/{name}', handler: (req) => updateInstance(req, true) },
  { method: 'POST', path: '/1.0/instances/{name}', handler: postInstance },
  { method: 'DELETE', path: '/1.0/instances/{name}', handler: deleteInstance },
  { method: 'GET', path: '/1.0/instances/{name}/state', handler: getState },
  { method: 'PUT', path: '/1.0/instances/{name}/state', handler: putState },
]);

/** What these routes implement in full (API-NOTES.md: a listed extension is a promise). */
export const extensions = [
  'instances',
  'container_full',
  'instance_get_full',
  'api_filtering',
  'container_last_used_at',
  'instance_bulk_state_change',
  'entity_description',
];
