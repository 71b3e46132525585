import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { saveConfig, type InstanceConfig } from '../../../lib/state/config.js';
import { Context } from '../../../lib/state/context.js';
import type { Paths } from '../../../lib/state/paths.js';
import { routes } from '../../../lib/api/routes/index.js';
import { ApiError, type ApiRequest, type ApiResult, type Identity, type Operation, type OperationSpec } from '../../../lib/api/types.js';
import { readInstances, stateShape } from '../../../lib/api/shapes/instance.js';
import { compareShapes, goldenMetadata, shapeOf } from '../../helpers/shape.js';
import type { InstanceState } from '../../../lib/instance/status.js';

/** A state dir with stopped containers (config only: nothing here starts or reads a root). */
function tmpCtx(t: { teardown(fn: () => void): void }): Context {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-apiinst-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const p: Paths = {
    stateDir: path.join(root, 'state'),
    runDir: path.join(root, 'run'),
    cacheDir: path.join(root, 'cache'),
    cgroupPrefix: 'tslxc-unit-apiinst',
  };
  fs.mkdirSync(path.join(p.stateDir, 'profiles'), { recursive: true });
  fs.writeFileSync(
    path.join(p.stateDir, 'profiles', 'default.yaml'),
    'description: test\nconfig:\n  limits.cpu: "1"\ndevices:\n  root:\n    type: disk\n    path: /\n    pool: default\n',
  );
  return new Context(p);
}

function make(ctx: Context, name: string, extra: Partial<InstanceConfig> = {}): InstanceConfig {
  fs.mkdirSync(path.join(ctx.paths.stateDir, 'containers', name), { recursive: true, mode: 0o700 });
  const cfg = {
    name,
    status: 'created',
    created_at: '2026-12-02T00:00:00.000Z',
    hostname: name,
    image: { fingerprint: 'f'.repeat(64), alias: 'debian', os: 'debian', release: 'bookworm', description: 'Debian bookworm' },
    init: ['/sbin/init'],
    stop_signal: 'SIGRTMIN+3',
    environment: {},
    profiles: ['default'],
    config: { 'limits.memory': '256MiB', 'volatile.eth0.hwaddr': '00:16:3e:00:00:01' },
    devices: { eth0: { type: 'nic', network: 'tslxcbr0', name: 'eth0' } },
    ...extra,
  } as InstanceConfig;
  saveConfig(ctx.paths, cfg);
  return cfg;
}

function snapshot(ctx: Context, name: string, snap: string): void {
  const dir = path.join(ctx.paths.stateDir, 'containers', name, 'snapshots', snap);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(ctx.paths.stateDir, 'containers', name, 'config.yaml'), path.join(dir, 'config.yaml'));
  fs.writeFileSync(path.join(dir, 'snapshot.yaml'), `name: ${snap}\ncreated_at: "2026-12-03T00:00:00.000Z"\n`);
}

const UNIX: Identity = { protocol: 'unix', name: 'unix', trusted: true };

function request(ctx: Context, method: string, url: string, opts: { identity?: Identity; body?: unknown; headers?: Record<string, string> } = {}) {
  const u = new URL(url, 'http://x');
  const route = routes.find((r) => r.method === method && new RegExp(`^${r.path.replace(/\{[a-z]+\}/g, '([^/]+)')}$`).test(u.pathname));
  if (!route) throw new Error(`no route ${method} ${u.pathname}`);
  const names = [...route.path.matchAll(/\{([a-z]+)\}/g)].map((m) => m[1]);
  const values = new RegExp(`^${route.path.replace(/\{[a-z]+\}/g, '([^/]+)')}$`).exec(u.pathname)!.slice(1);
  const runs: Array<Promise<unknown>> = [];
  const events: Array<[string, string]> = [];
  const req = {
    ctx,
    method,
    path: u.pathname,
    params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(values[i])])),
    query: u.searchParams,
    headers: opts.headers ?? {},
    identity: opts.identity ?? UNIX,
    json: async () => opts.body,
    raw: undefined as never,
    operations: {
      start(spec: OperationSpec): Operation {
        runs.push(spec.run({ id: 'op', sockets: new Map(), onSocket() {}, update() {}, signal: new AbortController().signal }));
        return { id: 'op', class: spec.class, description: spec.description, resources: spec.resources ?? null } as Operation;
      },
    },
    events: { lifecycle: (action: string, source: string) => events.push([action, source]) },
  } as unknown as ApiRequest;
  return { result: route.handler(req), runs, events };
}

const call = async (ctx: Context, method: string, url: string, opts?: Parameters<typeof request>[3]): Promise<ApiResult> =>
  request(ctx, method, url, opts).result;
const metadata = (r: ApiResult) => (r as Extract<ApiResult, { type: 'sync' }>).metadata;

test('list: recursion 0 URLs, 1 instances, 2 full; filter; a restricted caller sees its own only', async (t) => {
  const ctx = tmpCtx(t);
  make(ctx, 'web1');
  make(ctx, 'db1');
  t.deepEqual(metadata(await call(ctx, 'GET', '/1.0/instances')), ['/1.0/instances/db1', '/1.0/instances/web1']);
  const one = metadata(await call(ctx, 'GET', '/1.0/instances?recursion=1')) as Array<Record<string, unknown>>;
  t.deepEqual(
    one.map((i) => [i.name, i.status, i.status_code, i.location, i.project, i.type]),
    [
      ['db1', 'Stopped', 102, 'none', 'default', 'container'],
      ['web1', 'Stopped', 102, 'none', 'default', 'container'],
    ],
  );
  t.false('state' in one[0]);
  const full = metadata(await call(ctx, 'GET', '/1.0/instances?recursion=2')) as Array<Record<string, unknown>>;
  t.is((full[0].state as { pid: number }).pid, 0);
  t.deepEqual(metadata(await call(ctx, 'GET', '/1.0/instances?filter=name+eq+web1')), ['/1.0/instances/web1']);
  t.is((metadata(await call(ctx, 'GET', `/1.0/instances?recursion=1&filter=${encodeURIComponent('name eq db1 or name eq web1')}`)) as unknown[]).length, 2);
  await t.throwsAsync(call(ctx, 'GET', '/1.0/instances?filter=name+eq'), { instanceOf: ApiError });
  const restricted: Identity = { protocol: 'tls', name: 'alice', trusted: true, instances: ['web*'] };
  t.deepEqual(metadata(await call(ctx, 'GET', '/1.0/instances', { identity: restricted })), ['/1.0/instances/web1']);
  t.is((metadata(await call(ctx, 'GET', '/1.0/instances?recursion=2', { identity: restricted })) as unknown[]).length, 1);
  const hidden = await t.throwsAsync(call(ctx, 'GET', '/1.0/instances/db1', { identity: restricted }));
  t.is((hidden as ApiError).status, 404, "another's instance does not exist for it");
  for (const [m, u, b] of [
    ['PUT', '/1.0/instances/db1/state', { action: 'start' }],
    ['DELETE', '/1.0/instances/db1', undefined],
    ['PATCH', '/1.0/instances/db1', { config: {} }],
    ['POST', '/1.0/instances/db1', { name: 'web2' }],
    ['GET', '/1.0/instances/db1/snapshots', undefined],
  ] as const)
    t.is(((await t.throwsAsync(call(ctx, m, u, { identity: restricted, body: b }))) as ApiError).status, 404, `${m} ${u}`);
  const create = await t.throwsAsync(
    call(ctx, 'POST', '/1.0/instances', { identity: restricted, body: { name: 'db2', source: { type: 'image', alias: 'x' } } }),
  );
  t.is((create as ApiError).status, 403, 'creates only names it matches');
  t.is(((await t.throwsAsync(call(ctx, 'GET', '/1.0/instances/nope'))) as ApiError).status, 404);
});

test('instance: LXD 5.0.2 shapes (goldens), config values as strings, derived keys', async (t) => {
  const ctx = tmpCtx(t);
  make(ctx, 'c1');
  snapshot(ctx, 'c1', 'snap0');
  const got = await call(ctx, 'GET', '/1.0/instances/c1');
  const inst = metadata(got) as Record<string, Record<string, string>> & { expanded_devices: Record<string, Record<string, string>> };
  t.regex((got as { etag?: string }).etag ?? '', /^[0-9a-f]{64}$/);
  t.deepEqual(compareShapes(shapeOf(inst), goldenMetadata('instance')), []);
  t.is(inst.config['image.os'], 'debian');
  t.is(inst.config['volatile.base_image'], 'f'.repeat(64));
  t.is(inst.expanded_config['limits.cpu'], '1');
  t.is(inst.expanded_devices.root.pool, 'default');
  t.is(inst.last_used_at as unknown as string, '1970-01-01T00:00:00Z', 'never started');
  const full = metadata(await call(ctx, 'GET', '/1.0/instances/c1?recursion=1'));
  // A stopped instance has no network (null), LXD's golden ran: that one path is not compared.
  t.deepEqual(compareShapes(shapeOf(full), goldenMetadata('instance-recursion1'), { ignore: ['state.network'] }), []);
  const [all] = await readInstances(ctx, { full: true });
  t.deepEqual(compareShapes(shapeOf([all]), goldenMetadata('instances-recursion2'), { ignore: ['[].state.network'] }), []);
  t.deepEqual(compareShapes(shapeOf(metadata(await call(ctx, 'GET', '/1.0/instances/c1/snapshots/snap0'))), goldenMetadata('snapshot')), []);
  t.deepEqual(metadata(await call(ctx, 'GET', '/1.0/instances/c1/snapshots')), ['/1.0/instances/c1/snapshots/snap0']);
  t.deepEqual(compareShapes(shapeOf(metadata(await call(ctx, 'GET', '/1.0/instances/c1/snapshots?recursion=1'))), goldenMetadata('snapshots-recursion1')), []);
  t.is(((await t.throwsAsync(call(ctx, 'GET', '/1.0/instances/c1/snapshots/nope'))) as ApiError).status, 404);
});

test('state: a running instance as LXD renders it (golden), a stopped one without usage', (t) => {
  const running: InstanceState = { name: 'c1', status: 'Running', initPid: 4242, ipv4: [], image: 'x', hostname: 'c1', createdAt: '' };
  const s = stateShape(running, {
    usage: { memoryBytes: 1000, memoryPeakBytes: 2000, cpuTimeNs: 5, processes: 7 },
    nics: [{ name: 'eth0', host: 'vethnothere', hwaddr: '00:16:3e:00:00:01', mtu: 1500, ipv4: '10.0.3.5', prefix: 24 }],
  });
  t.deepEqual(compareShapes(shapeOf(s), goldenMetadata('instance-state')), []);
  t.is(s.pid, 4242);
  t.deepEqual(s.network!.eth0.addresses, [{ family: 'inet', address: '10.0.3.5', netmask: '24', scope: 'global' }]);
  t.is(s.network!.lo.type, 'loopback');
  const stopped = stateShape({ ...running, status: 'Created', initPid: undefined });
  t.is(stopped.status, 'Stopped');
  t.is(stopped.status_code, 102);
  t.is(stopped.network, null);
  t.is(stopped.memory.usage, 0);
});

test('PUT/PATCH: If-Match mismatch is 412; derived keys are dropped, volatile kept', async (t) => {
  const ctx = tmpCtx(t);
  make(ctx, 'c1');
  const got = await call(ctx, 'GET', '/1.0/instances/c1');
  const etag = (got as { etag: string }).etag;
  const inst = metadata(got) as { config: Record<string, string>; devices: unknown; profiles: string[] };
  const stale = await t.throwsAsync(call(ctx, 'PUT', '/1.0/instances/c1', { body: inst, headers: { 'if-match': 'nope' } }));
  t.is((stale as ApiError).status, 412);
  const put = request(ctx, 'PUT', '/1.0/instances/c1', {
    body: { ...inst, config: { ...inst.config, 'user.note': 'hi', 'volatile.eth0.hwaddr': 'changed' } },
    headers: { 'if-match': `"${etag}"` },
  });
  t.is((await put.result).type, 'async');
  await Promise.all(put.runs);
  t.deepEqual(put.events, [['instance-updated', '/1.0/instances/c1']]);
  const after = metadata(await call(ctx, 'GET', '/1.0/instances/c1')) as { config: Record<string, string> };
  t.is(after.config['user.note'], 'hi');
  t.is(after.config['volatile.eth0.hwaddr'], '00:16:3e:00:00:01', "volatile keys are tslxc's");
  const cfg = fs.readFileSync(path.join(ctx.paths.stateDir, 'containers', 'c1', 'config.yaml'), 'utf8');
  t.false(cfg.includes('image.os'), 'derived keys are not stored');
  const patch = request(ctx, 'PATCH', '/1.0/instances/c1', { body: { config: { 'user.more': 'x' } } });
  await patch.result;
  await Promise.all(patch.runs);
  const patched = metadata(await call(ctx, 'GET', '/1.0/instances/c1')) as { config: Record<string, string> };
  t.is(patched.config['user.note'], 'hi');
  t.is(patched.config['user.more'], 'x');
  t.not(((await call(ctx, 'GET', '/1.0/instances/c1')) as { etag: string }).etag, etag, 'the ETag follows the config');
  const bad = await t.throwsAsync(call(ctx, 'PUT', '/1.0/instances/c1', { body: { config: { 'limits.memory': 5 } } }));
  t.is((bad as ApiError).status, 400, 'config values are strings');
  t.is(((await t.throwsAsync(call(ctx, 'PUT', '/1.0/instances/c1/state', { body: { action: 'explode' } }))) as ApiError).status, 400);
});
