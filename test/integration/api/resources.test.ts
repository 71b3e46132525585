import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { makeTarGz } from '../../helpers/tarball.js';
import { hostLinks, teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { assertSameShape, goldenMetadata } from '../../helpers/shape.js';
import { routes } from '../../../lib/api/routes/index.js';
import type { ApiRequest, ApiResult, Identity, Operation, OperationSpec, Route } from '../../../lib/api/types.js';
import { ApiError } from '../../../lib/api/types.js';
import { TslxcError } from '../../../lib/errors.js';

/**
 * The resource routes (images, profiles, networks, storage) called as the server calls them, with
 * requests built here: each object's shape against LXD 5.0.2's golden, the library's refusals as
 * HTTP statuses, ETags, uploads and exports, and nothing left behind by a refused upload.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apires');
  // The library reads some paths from the environment (a nic's network), as in the server's process.
  for (const k of ['TSLXC_DIR', 'TSLXC_RUN_DIR', 'TSLXC_CACHE_DIR', 'TSLXC_CGROUP_PREFIX']) process.env[k] = env.env[k];
  const bridge = uniqueBridge('tsla');
  const events: Array<{ action: string; source: string }> = [];
  const running = new Map<string, Promise<Record<string, unknown> | void>>();
  const unix: Identity = { protocol: 'unix', name: 'unix', trusted: true };

  function match(r: Route, method: string, p: string): Record<string, string> | undefined {
    if (r.method !== method) return undefined;
    const a = r.path.split('/');
    const b = p.split('/');
    if (a.length !== b.length) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < a.length; i++) {
      if (a[i].startsWith('{')) params[a[i].slice(1, -1)] = decodeURIComponent(b[i]);
      else if (a[i] !== b[i]) return undefined;
    }
    return params;
  }

  /** A request through the routes, as the server would make it; errors come back as { status, error }. */
  async function call(
    method: string,
    url: string,
    opts: { body?: unknown; raw?: Buffer; headers?: Record<string, string>; identity?: Identity } = {},
  ): Promise<{ status: number; result?: ApiResult; error?: string }> {
    const [p, q] = url.split('?');
    // Literal segments win over parameters, as in the server's router.
    const candidates = routes
      .map((r) => ({ r, params: match(r, method, p) }))
      .filter((x) => x.params)
      .sort((x, y) => y.r.path.split('{').length - x.r.path.split('{').length)
      .reverse();
    if (!candidates.length) return { status: 404, error: 'no route' };
    const { r, params } = candidates[0];
    const raw = Readable.from(opts.raw ? [opts.raw] : []) as unknown as IncomingMessage;
    const req: ApiRequest = {
      ctx: env.ctx,
      method,
      path: p,
      params: params!,
      query: new URLSearchParams(q ?? ''),
      headers: { ...(opts.raw ? { 'content-type': 'application/octet-stream', 'content-length': String(opts.raw.length) } : {}), ...opts.headers },
      identity: opts.identity ?? unix,
      json: async <T>() => opts.body as T,
      raw,
      operations: {
        start(spec: OperationSpec): Operation {
          const id = crypto.randomUUID();
          running.set(id, spec.run({ id, sockets: new Map(), onSocket() {}, update() {}, signal: new AbortController().signal }));
          const now = new Date().toISOString();
          return {
            id,
            class: spec.class,
            description: spec.description,
            created_at: now,
            updated_at: now,
            status: 'Running',
            status_code: 103,
            resources: spec.resources ?? null,
            metadata: spec.metadata ?? null,
            may_cancel: false,
            err: '',
            location: 'none',
          };
        },
      },
      events: { lifecycle: (action, source) => events.push({ action, source }) },
    };
    try {
      const result = await r.handler(req);
      return { status: result.type === 'sync' ? (result.status ?? 200) : result.type === 'async' ? 202 : (result.status ?? 200), result };
    } catch (err) {
      if (err instanceof ApiError) return { status: err.status, error: err.message };
      if (err instanceof TslxcError && err.kind)
        return { status: { 'not-found': 404, conflict: 409, invalid: 400, forbidden: 403 }[err.kind], error: err.message };
      return { status: 500, error: (err as Error).message };
    }
  }

  const meta = (r: { result?: ApiResult }) => (r.result as { metadata: unknown }).metadata;
  const etag = (r: { result?: ApiResult }) => (r.result as { etag?: string }).etag!;
  async function finish(r: { result?: ApiResult }): Promise<{ ok: boolean; value?: unknown; error?: string }> {
    const op = (r.result as { operation: Operation }).operation;
    try {
      return { ok: true, value: await running.get(op.id) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  // A tiny unified image: metadata.yaml and a rootfs with one file.
  const image = makeTarGz([
    {
      name: 'metadata.yaml',
      content: 'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: test\n  release: "1"\n  description: api test image\n',
    },
    { name: 'rootfs/', type: '5' },
    { name: 'rootfs/hello', content: 'hi\n' },
  ]);
  const fingerprint = crypto.createHash('sha256').update(image).digest('hex');
  const storeLeftovers = () => fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((n) => n.startsWith('.'));

  test.after.always(async () => {
    await env.deleteContainers();
    await teardownNetworks(env);
    await env.cleanup();
  });

  test.serial('images: an upload is imported as an operation; list, get by prefix, aliases, export, delete', async (t) => {
    const up = await call('POST', '/1.0/images', { raw: image, headers: { 'x-lxd-filename': 'test.tar.gz' } });
    t.is(up.status, 202, up.error);
    const done = await finish(up);
    t.true(done.ok, done.error);
    t.deepEqual(done.value, { fingerprint, size: String(image.length) });
    assertSameShape(t, done.value, (goldenMetadata('image-post-wait') as Record<string, never>).metadata);
    t.deepEqual(storeLeftovers(), []);

    const list0 = await call('GET', '/1.0/images');
    t.deepEqual(meta(list0), [`/1.0/images/${fingerprint}`]);
    assertSameShape(t, meta(await call('GET', '/1.0/images?recursion=1')), goldenMetadata('images-recursion1'));
    const one = await call('GET', `/1.0/images/${fingerprint.slice(0, 10)}`);
    t.is(one.status, 200);
    t.truthy(etag(one));
    assertSameShape(t, meta(one), goldenMetadata('image'));
    t.is((await call('GET', '/1.0/images/ffffffffff')).status, 404);
    t.is((await call('GET', '/1.0/images/not-hex')).status, 404);

    t.is((await call('POST', '/1.0/images/aliases', { body: { name: 'tiny', target: fingerprint, description: '' } })).status, 201);
    t.is((await call('POST', '/1.0/images/aliases', { body: { name: 'tiny', target: fingerprint } })).status, 409);
    t.is((await call('POST', '/1.0/images/aliases', { body: { name: 'x', target: 'ab'.repeat(32) } })).status, 404);
    assertSameShape(t, meta(await call('GET', '/1.0/images/aliases/tiny')), goldenMetadata('image-alias'));
    assertSameShape(t, meta(await call('GET', '/1.0/images/aliases?recursion=1')), goldenMetadata('image-aliases-recursion1'));
    t.deepEqual(meta(await call('GET', '/1.0/images/aliases')), ['/1.0/images/aliases/tiny']);
    t.is((await call('POST', '/1.0/images/aliases/tiny', { body: { name: 'tiny2' } })).status, 201);
    t.is((await call('GET', '/1.0/images/aliases/tiny')).status, 404);
    t.deepEqual((meta(await call('GET', `/1.0/images/${fingerprint}`)) as { aliases: unknown }).aliases, [{ name: 'tiny2', description: '' }]);

    // The export is the uploaded file itself: its sha256 is the fingerprint, as the client checks.
    const ex = await call('GET', `/1.0/images/${fingerprint}/export`);
    const raw = ex.result as Extract<ApiResult, { type: 'raw' }>;
    t.regex(raw.headers!['Content-Disposition'], new RegExp(`filename=${fingerprint}\\.tar\\.gz`));
    const chunks: Buffer[] = [];
    for await (const c of raw.body as NodeJS.ReadableStream) chunks.push(c as Buffer);
    t.true(Buffer.concat(chunks).equals(image));

    t.is((await call('DELETE', '/1.0/images/aliases/tiny2')).status, 200);
    const del = await call('DELETE', `/1.0/images/${fingerprint}`);
    t.is(del.status, 202);
    t.true((await finish(del)).ok);
    t.deepEqual(meta(await call('GET', '/1.0/images')), []);
    t.true(events.some((e) => e.action === 'image-created') && events.some((e) => e.action === 'image-deleted'));
  });

  test.serial('images: a malicious or broken upload is refused and leaves nothing behind', async (t) => {
    const bad = [
      makeTarGz([
        { name: 'metadata.yaml', content: 'architecture: x86_64\n' },
        { name: 'rootfs/../../escape', content: 'x' },
      ]),
      makeTarGz([
        { name: 'metadata.yaml', content: 'architecture: x86_64\n' },
        { name: '/etc/evil', content: 'x' },
      ]),
      makeTarGz([
        { name: 'metadata.yaml', content: 'architecture: x86_64\n' },
        { name: 'rootfs/', type: '5' },
        { name: 'rootfs/dev', type: '3', major: 8, minor: 0 },
      ]),
      makeTarGz([{ name: 'rootfs/', type: '5' }]),
      Buffer.from('not an archive at all'),
    ];
    for (const [i, body] of bad.entries()) {
      const up = await call('POST', '/1.0/images', { raw: body });
      if (up.status === 202) {
        const done = await finish(up);
        t.false(done.ok, `upload ${i} imported`);
      } else t.true(up.status >= 400 && up.status < 500, `upload ${i}: ${up.status}`);
      t.deepEqual(meta(await call('GET', '/1.0/images')), [], `upload ${i} left an image`);
      t.deepEqual(storeLeftovers(), [], `upload ${i} left files`);
    }
    t.is((await call('POST', '/1.0/images', { raw: Buffer.alloc(0) })).status, 400);
    t.is((await call('POST', '/1.0/images', { body: { source: { type: 'url' } }, headers: { 'content-type': 'application/json' } })).status, 400);
    // Beyond the limit: 413 before a byte is stored.
    process.env.TSLXC_API_MAX_UPLOAD = '100';
    try {
      t.is((await call('POST', '/1.0/images', { raw: image })).status, 413);
    } finally {
      delete process.env.TSLXC_API_MAX_UPLOAD;
    }
    t.deepEqual(storeLeftovers(), []);
    // The fingerprint the client announced must be the one imported.
    const wrong = await call('POST', '/1.0/images', { raw: image, headers: { 'x-lxd-fingerprint': 'ab'.repeat(32) } });
    t.false((await finish(wrong)).ok);
    t.deepEqual(meta(await call('GET', '/1.0/images')), []);
    t.deepEqual(storeLeftovers(), []);
  });

  test.serial('profiles: create, get with ETag, PUT/PATCH with If-Match, rename, in-use refusal, delete', async (t) => {
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'web', description: 'd', config: { 'limits.cpu': '1' }, devices: {} } })).status, 201);
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'web' } })).status, 409);
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'bad/name' } })).status, 400);
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'n', config: { 'limits.cpu': 2 } } })).status, 400);
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'n2', config: { 'no.such.key': 'x' } } })).status, 400);
    const g = await call('GET', '/1.0/profiles/web');
    assertSameShape(t, meta(g), goldenMetadata('profile'));
    assertSameShape(t, meta(await call('GET', '/1.0/profiles?recursion=1')), goldenMetadata('profiles-recursion1'));
    t.true((meta(await call('GET', '/1.0/profiles')) as string[]).includes('/1.0/profiles/web'));
    t.is((await call('GET', '/1.0/profiles/nope')).status, 404);

    t.is((await call('PUT', '/1.0/profiles/web', { body: { config: {} }, headers: { 'if-match': '"stale"' } })).status, 412);
    t.is((await call('PATCH', '/1.0/profiles/web', { body: { config: { 'limits.memory': '256MiB' } }, headers: { 'if-match': `"${etag(g)}"` } })).status, 200);
    t.deepEqual((meta(await call('GET', '/1.0/profiles/web')) as { config: unknown }).config, { 'limits.cpu': '1', 'limits.memory': '256MiB' });
    t.is((await call('PUT', '/1.0/profiles/web', { body: { config: { 'limits.cpu': '2' }, devices: {}, description: 'e' } })).status, 200);
    const after = meta(await call('GET', '/1.0/profiles/web')) as { config: unknown; description: string };
    t.deepEqual(after.config, { 'limits.cpu': '2' });
    t.is(after.description, 'e');
    t.is((await call('PUT', '/1.0/profiles/web', { body: { config: {} }, headers: { 'if-match': `"${etag(g)}"` } })).status, 412);

    // A restricted certificate may read shared objects, never change them.
    const restricted: Identity = { protocol: 'tls', name: 'r', trusted: true, instances: ['r-*'] };
    t.is((await call('GET', '/1.0/profiles/web', { identity: restricted })).status, 200);
    t.is((await call('DELETE', '/1.0/profiles/web', { identity: restricted })).status, 403);

    t.is((await call('POST', '/1.0/profiles/web', { body: { name: 'web2' } })).status, 201);
    t.is((await call('GET', '/1.0/profiles/web')).status, 404);
    // In use: refused as the CLI refuses, with the container named.
    const { saveConfig } = await import('../../../lib/state/config.js');
    const { mkdirp } = await import('../../../lib/util/fs.js');
    mkdirp(path.join(env.paths.stateDir, 'containers', 'c1'), 0o700);
    saveConfig(env.paths, {
      name: 'c1',
      image: fingerprint,
      status: 'stopped',
      created_at: new Date().toISOString(),
      profiles: ['default', 'web2'],
      config: {},
      devices: {},
    } as never);
    t.deepEqual((meta(await call('GET', '/1.0/profiles/web2')) as { used_by: string[] }).used_by, ['/1.0/instances/c1']);
    t.deepEqual((meta(await call('GET', '/1.0/profiles/web2', { identity: restricted })) as { used_by: string[] }).used_by, []);
    const inUse = await call('DELETE', '/1.0/profiles/web2');
    t.is(inUse.status, 409);
    t.regex(inUse.error!, /c1/);
    fs.rmSync(path.join(env.paths.stateDir, 'containers', 'c1'), { recursive: true, force: true });
    t.is((await call('DELETE', '/1.0/profiles/web2')).status, 200);
    t.is((await call('DELETE', '/1.0/profiles/default')).status, 200, 'the user copy of default goes; the built-in stays');
  });

  test.serial('networks: create (a bridge without NAT), get, PATCH with If-Match, used_by, delete', async (t) => {
    const c = await call('POST', '/1.0/networks', {
      body: { name: bridge, type: 'bridge', description: '', config: { 'ipv4.address': 'auto', 'ipv4.nat': 'false' } },
    });
    t.is(c.status, 201, c.error);
    t.deepEqual(hostLinks(bridge), [bridge]);
    t.is((await call('POST', '/1.0/networks', { body: { name: bridge, config: { 'ipv4.nat': 'false' } } })).status, 409);
    t.is((await call('POST', '/1.0/networks', { body: { name: 'x', type: 'macvlan' } })).status, 400);
    t.is((await call('POST', '/1.0/networks', { body: { name: 'tslaz', config: { 'ipv4.address': 'bogus' } } })).status, 400);
    const g = await call('GET', `/1.0/networks/${bridge}`);
    assertSameShape(t, meta(g), goldenMetadata('network'));
    assertSameShape(t, meta(await call('GET', '/1.0/networks?recursion=1')), goldenMetadata('networks-recursion1'));
    const st = await call('GET', `/1.0/networks/${bridge}/state`);
    assertSameShape(t, meta(st), goldenMetadata('network-state'));
    t.is((meta(st) as { state: string }).state, 'up');
    t.is((await call('PATCH', `/1.0/networks/${bridge}`, { body: { config: { 'bridge.mtu': '1400' } }, headers: { 'if-match': '"old"' } })).status, 412);
    t.is((await call('PATCH', `/1.0/networks/${bridge}`, { body: { config: { 'bridge.mtu': '1400' } }, headers: { 'if-match': etag(g) } })).status, 200);
    t.is((meta(await call('GET', `/1.0/networks/${bridge}`)) as { config: Record<string, string> }).config['bridge.mtu'], '1400');
    t.is((await call('POST', '/1.0/profiles', { body: { name: 'net', devices: { eth0: { type: 'nic', network: bridge, name: 'eth0' } } } })).status, 201);
    t.deepEqual((meta(await call('GET', `/1.0/networks/${bridge}`)) as { used_by: string[] }).used_by, ['/1.0/profiles/net']);
    t.is((await call('DELETE', `/1.0/networks/${bridge}`)).status, 409);
    t.is((await call('DELETE', '/1.0/profiles/net')).status, 200);
    t.is((await call('DELETE', `/1.0/networks/${bridge}`)).status, 200);
    t.deepEqual(hostLinks(bridge), []);
    t.is((await call('GET', `/1.0/networks/${bridge}`)).status, 404);
  });

  test.serial('storage: pools and custom volumes: create, list, get, in-use refusal, delete', async (t) => {
    t.is((await call('POST', '/1.0/storage-pools', { body: { name: 'p1', driver: 'dir', config: {}, description: 'test' } })).status, 201);
    t.is((await call('POST', '/1.0/storage-pools', { body: { name: 'p1', driver: 'dir' } })).status, 409);
    t.is((await call('POST', '/1.0/storage-pools', { body: { name: 'p2', driver: 'zfs' } })).status, 400);
    assertSameShape(t, meta(await call('GET', '/1.0/storage-pools/p1')), goldenMetadata('storage-pool'));
    assertSameShape(t, meta(await call('GET', '/1.0/storage-pools?recursion=1')), goldenMetadata('storage-pools-recursion1'));

    const v = await call('POST', '/1.0/storage-pools/p1/volumes/custom', { body: { name: 'data', config: {} } });
    t.is(v.status, 200, v.error);
    assertSameShape(t, meta(v), goldenMetadata('storage-volume-post'));
    t.is((await call('POST', '/1.0/storage-pools/p1/volumes', { body: { name: 'data', type: 'custom' } })).status, 409);
    t.is((await call('POST', '/1.0/storage-pools/p1/volumes', { body: { name: 'blk', content_type: 'block' } })).status, 400);
    t.deepEqual(meta(await call('GET', '/1.0/storage-pools/p1/volumes')), ['/1.0/storage-pools/p1/volumes/custom/data']);
    assertSameShape(t, meta(await call('GET', '/1.0/storage-pools/p1/volumes?recursion=1')), goldenMetadata('storage-volumes-recursion1'));
    const one = await call('GET', '/1.0/storage-pools/p1/volumes/custom/data');
    assertSameShape(t, meta(one), goldenMetadata('storage-volume'));
    t.truthy(etag(one));
    t.is((await call('GET', '/1.0/storage-pools/p1/volumes/custom/nope')).status, 404);
    t.is((await call('GET', '/1.0/storage-pools/nope/volumes')).status, 404);
    t.deepEqual((meta(await call('GET', '/1.0/storage-pools/p1')) as { used_by: string[] }).used_by, ['/1.0/storage-pools/p1/volumes/custom/data']);

    t.is((await call('DELETE', '/1.0/storage-pools/p1')).status, 409);
    t.is(
      (await call('POST', '/1.0/profiles', { body: { name: 'vol', devices: { d: { type: 'disk', pool: 'p1', source: 'data', path: '/mnt' } } } })).status,
      201,
    );
    t.is((await call('DELETE', '/1.0/storage-pools/p1/volumes/custom/data')).status, 409);
    t.is((await call('DELETE', '/1.0/profiles/vol')).status, 200);
    t.is((await call('DELETE', '/1.0/storage-pools/p1/volumes/custom/data')).status, 200);
    t.is((await call('DELETE', '/1.0/storage-pools/p1')).status, 200);
    t.is((await call('GET', '/1.0/storage-pools/p1')).status, 404);
  });
}
