import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocket } from 'ws';
import { shapeOf, type Golden } from '../test/helpers/shape.js';
import { BenchEnv, repoRoot } from './env.js';
import { LxdDaemon } from './lxd.js';
import { run, runOk, sleep } from './proc.js';

/**
 * Records LXD 5.0.2's answers to the requests the `lxc` client and pylxd make, reduced to shapes
 * (test/helpers/shape.ts), into test/fixtures/lxd-5.0.2/: the goldens of the API's differential
 * tests. A private daemon (bench/lxd.ts: its own LXD_DIR, a dead proxy, our child) gets our Debian
 * image, an instance with a snapshot, a profile, a custom volume and a bridge with no address and no
 * NAT (it routes nowhere), then everything goes away again.
 *
 *   node dist/bench/lxd-shapes.js [--out DIR]
 */

const OUT = path.join(repoRoot, 'test/fixtures/lxd-5.0.2');
const INSTANCE = 'shapes-c1';
const IMAGE = 'shapes-debian';
const PROFILE = 'shapes-prof';
const VOLUME = 'shapes-vol';
const BRIDGE = `shbr${randomBytes(2).toString('hex')}`;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

interface RequestOptions {
  headers?: Record<string, string>;
  /** A file sent as the raw body (an image upload). */
  file?: string;
  /** Keep only the status and headers (a download). */
  headersOnly?: boolean;
}

function request(socket: string, method: string, url: string, body?: unknown, opts: RequestOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { Host: 'lxd', ...opts.headers };
    if (data) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': data.length });
    if (opts.file) Object.assign(headers, { 'Content-Type': 'application/octet-stream', 'Content-Length': fs.statSync(opts.file).size });
    const req = http.request({ socketPath: socket, method, path: url, headers }, (res) => {
      if (opts.headersOnly) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* a raw body */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${url}: timed out`)));
    if (opts.file) fs.createReadStream(opts.file).pipe(req);
    else req.end(data);
  });
}

async function main(): Promise<void> {
  const outIdx = process.argv.indexOf('--out');
  const out = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]) : OUT;
  const log = (s: string) => process.stderr.write(`[lxd-shapes] ${s}\n`);
  const env = new BenchEnv();
  const lxd = new LxdDaemon(env, '1GiB');
  lxd.pools.splice(1); // the dir pool only: no loop file
  let bridgeMade = false;
  let bridge2Made = false;
  let failed = false;
  const stop = () => log('interrupted; cleaning up');
  process.once('SIGINT', stop);
  try {
    await env.prepareTslxc();
    log('tslxc image build debian (cached) and export');
    await runOk(path.join(repoRoot, 'bin/tslxc'), ['image', 'build', 'debian'], { env: env.env, timeoutMs: 900_000 });
    const tarball = path.join(env.root, 'debian.tar.gz');
    await runOk(path.join(repoRoot, 'bin/tslxc'), ['image', 'export', 'debian', tarball], { env: env.env, timeoutMs: 600_000 });

    await lxd.start(log);
    await lxd.preseed();
    const socket = path.join(lxd.dir, 'unix.socket');
    log('LXD: image import, bridge, profile, volume, instance, snapshot, trust');
    await lxd.lxcOk(['image', 'import', tarball, '--alias', IMAGE]);
    lxd.images.add(IMAGE);
    await lxd.lxcOk(['network', 'create', BRIDGE, 'ipv4.address=none', 'ipv6.address=none', 'ipv4.nat=false', 'ipv6.nat=false']);
    bridgeMade = true;
    await lxd.lxcOk(['profile', 'create', PROFILE]);
    await lxd.lxcOk(['profile', 'set', PROFILE, 'limits.memory', '256MiB']);
    await lxd.lxcOk(['profile', 'device', 'add', PROFILE, 'eth0', 'nic', `network=${BRIDGE}`, 'name=eth0']);
    await lxd.lxcOk(['storage', 'volume', 'create', lxd.pools[0].name, VOLUME]);
    await lxd.lxcOk(['init', IMAGE, INSTANCE, '--profile', 'default', '--profile', PROFILE]);
    lxd.instances.add(INSTANCE);
    env.cgroupNames.add(`lxc.payload.${INSTANCE}`).add(`lxc.monitor.${INSTANCE}`);
    await lxd.lxcOk(['config', 'device', 'add', INSTANCE, 'data', 'disk', `pool=${lxd.pools[0].name}`, `source=${VOLUME}`, 'path=/mnt/data']);
    await lxd.lxcOk(['snapshot', INSTANCE, 'snap0']);
    const crt = path.join(env.root, 'client.crt');
    await runOk('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:secp384r1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=shapes',
      '-keyout',
      path.join(env.root, 'client.key'),
      '-out',
      crt,
    ]);
    await lxd.lxcOk(['config', 'trust', 'add', crt]);

    // Events: listen before the async requests so one of each kind arrives.
    const events: Record<string, unknown> = {};
    const ws = new WebSocket(`ws+unix://${socket}:/1.0/events?type=operation,lifecycle`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data) => {
      const ev = JSON.parse(String(data)) as { type: string };
      if (!events[ev.type]) events[ev.type] = ev;
    });

    const golden: Record<string, Golden> = {};
    const record = async (name: string, method: string, url: string, body?: unknown, opts: RequestOptions = {}): Promise<Answer> => {
      const a = await request(socket, method, url, body, opts);
      golden[name] = {
        request: `${method} ${url}`,
        http_status: a.status,
        headers: ['etag', 'location', 'content-disposition'].filter((h) => h in a.headers),
        shape: shapeOf(a.body),
      };
      log(`${method} ${url}: ${a.status}`);
      return a;
    };
    const waitOp = async (a: Answer): Promise<void> => {
      const op = (a.body as { operation?: string }).operation;
      if (op) await request(socket, 'GET', `${op}/wait?timeout=120`);
    };

    // The start is the async request whose operation and events we keep.
    const started = await record('instance-state-put', 'PUT', `/1.0/instances/${INSTANCE}/state`, { action: 'start', timeout: 30 });
    await record('operations-recursion1', 'GET', '/1.0/operations?recursion=1');
    const opUrl = (started.body as { operation: string }).operation;
    await record('operation', 'GET', opUrl);
    await record('operation-wait', 'GET', `${opUrl}/wait?timeout=120`);
    const snap = await record('snapshot-post', 'POST', `/1.0/instances/${INSTANCE}/snapshots`, { name: 'snap1' });
    await waitOp(snap);
    await sleep(3000); // the instance's network up (state.network addresses), events delivered

    await record('server', 'GET', '/1.0');
    await record('instances-recursion0', 'GET', '/1.0/instances');
    await record('instances-recursion1', 'GET', '/1.0/instances?recursion=1');
    await record('instances-recursion2', 'GET', '/1.0/instances?recursion=2');
    await record('instance', 'GET', `/1.0/instances/${INSTANCE}`);
    await record('instance-recursion1', 'GET', `/1.0/instances/${INSTANCE}?recursion=1`);
    await record('instance-state', 'GET', `/1.0/instances/${INSTANCE}/state`);
    await record('snapshots-recursion0', 'GET', `/1.0/instances/${INSTANCE}/snapshots`);
    await record('snapshots-recursion1', 'GET', `/1.0/instances/${INSTANCE}/snapshots?recursion=1`);
    await record('snapshot', 'GET', `/1.0/instances/${INSTANCE}/snapshots/snap0`);
    const exec = await record('exec-post', 'POST', `/1.0/instances/${INSTANCE}/exec`, {
      command: ['true'],
      environment: {},
      'wait-for-websocket': false,
      interactive: false,
      'record-output': false,
    });
    await record('exec-wait', 'GET', `${(exec.body as { operation: string }).operation}/wait?timeout=60`);
    await record('profiles-recursion0', 'GET', '/1.0/profiles');
    await record('profiles-recursion1', 'GET', '/1.0/profiles?recursion=1');
    await record('profile', 'GET', `/1.0/profiles/${PROFILE}`);
    await record('images-recursion0', 'GET', '/1.0/images');
    await record('images-recursion1', 'GET', '/1.0/images?recursion=1');
    const imgs = (await request(socket, 'GET', '/1.0/images')).body as { metadata: string[] };
    await record('image', 'GET', imgs.metadata[0]);
    await record('image-aliases-recursion0', 'GET', '/1.0/images/aliases');
    await record('image-aliases-recursion1', 'GET', '/1.0/images/aliases?recursion=1');
    await record('image-alias', 'GET', `/1.0/images/aliases/${IMAGE}`);
    await record('networks-recursion0', 'GET', '/1.0/networks');
    await record('networks-recursion1', 'GET', '/1.0/networks?recursion=1');
    await record('network', 'GET', `/1.0/networks/${BRIDGE}`);
    await record('network-state', 'GET', `/1.0/networks/${BRIDGE}/state`);
    await record('storage-pools-recursion0', 'GET', '/1.0/storage-pools');
    await record('storage-pools-recursion1', 'GET', '/1.0/storage-pools?recursion=1');
    await record('storage-pool', 'GET', `/1.0/storage-pools/${lxd.pools[0].name}`);
    await record('storage-volumes-recursion0', 'GET', `/1.0/storage-pools/${lxd.pools[0].name}/volumes`);
    await record('storage-volumes-recursion1', 'GET', `/1.0/storage-pools/${lxd.pools[0].name}/volumes?recursion=1`);
    await record('storage-volume', 'GET', `/1.0/storage-pools/${lxd.pools[0].name}/volumes/custom/${VOLUME}`);
    await record('certificates-recursion0', 'GET', '/1.0/certificates');
    await record('certificates-recursion1', 'GET', '/1.0/certificates?recursion=1');
    await record('error-not-found', 'GET', '/1.0/instances/shapes-nonexistent');
    await record('error-bad-request', 'POST', '/1.0/profiles', { name: 'bad/name' });
    await record('error-conflict', 'POST', '/1.0/profiles', { name: PROFILE });
    await record('error-precondition', 'PUT', `/1.0/profiles/${PROFILE}`, {}, { headers: { 'If-Match': '"not-the-etag"' } });
    // Creates and changes (sync answers), then removes, through the API as the clients do.
    await record('profile-post', 'POST', '/1.0/profiles', { name: 'shapes-p2', config: {}, devices: {}, description: '' });
    await record('profile-patch', 'PATCH', '/1.0/profiles/shapes-p2', { config: { 'limits.cpu': '1' } });
    await record('profile-rename', 'POST', '/1.0/profiles/shapes-p2', { name: 'shapes-p3' });
    await record('profile-delete', 'DELETE', '/1.0/profiles/shapes-p3');
    await record('profile-in-use-delete', 'DELETE', `/1.0/profiles/${PROFILE}`);
    await record('alias-post', 'POST', '/1.0/images/aliases', { name: 'shapes-a2', target: imgs.metadata[0].split('/').pop(), description: '' });
    await record('alias-rename', 'POST', '/1.0/images/aliases/shapes-a2', { name: 'shapes-a3' });
    await record('alias-delete', 'DELETE', '/1.0/images/aliases/shapes-a3');
    await record('storage-volume-post', 'POST', `/1.0/storage-pools/${lxd.pools[0].name}/volumes/custom`, { name: 'shapes-v2', config: {} });
    await record('storage-volume-delete', 'DELETE', `/1.0/storage-pools/${lxd.pools[0].name}/volumes/custom/shapes-v2`);
    await record('network-in-use-delete', 'DELETE', `/1.0/networks/${BRIDGE}`);
    await record('network-post', 'POST', '/1.0/networks', {
      name: `${BRIDGE}b`,
      type: 'bridge',
      description: '',
      config: { 'ipv4.address': 'none', 'ipv6.address': 'none', 'ipv4.nat': 'false', 'ipv6.nat': 'false' },
    });
    bridge2Made = true;
    await record('network-patch', 'PATCH', `/1.0/networks/${BRIDGE}b`, { config: { 'bridge.mtu': '1400' } });
    await record('network-delete', 'DELETE', `/1.0/networks/${BRIDGE}b`);
    await record('storage-pool-post', 'POST', '/1.0/storage-pools', { name: 'shapes-pool2', driver: 'dir', config: {}, description: '' });
    await record('storage-pool-delete', 'DELETE', '/1.0/storage-pools/shapes-pool2');
    // Images last: export (headers only), delete, and import by a posted tarball (the async ones).
    const fp = imgs.metadata[0].split('/').pop()!;
    await record('image-export', 'GET', `/1.0/images/${fp}/export`, undefined, { headersOnly: true });
    const del = await record('image-delete', 'DELETE', `/1.0/images/${fp}`);
    await waitOp(del);
    const post = await record('image-post', 'POST', '/1.0/images', undefined, {
      file: tarball,
      headers: { 'X-LXD-filename': 'debian.tar.gz', 'X-LXD-public': '0' },
    });
    await record('image-post-wait', 'GET', `${(post.body as { operation: string }).operation}/wait?timeout=300`);
    const again = await record('image-post-again', 'POST', '/1.0/images', undefined, { file: tarball, headers: { 'X-LXD-filename': 'debian.tar.gz' } });
    await record('image-post-again-wait', 'GET', `${(again.body as { operation: string }).operation}/wait?timeout=300`);

    await sleep(1000);
    ws.close();
    for (const [type, ev] of Object.entries(events)) {
      golden[`event-${type}`] = { request: 'GET /1.0/events', http_status: 101, headers: [], shape: shapeOf(ev) };
    }
    for (const k of ['operation', 'lifecycle']) if (!events[k]) throw new Error(`no ${k} event arrived from LXD`);

    fs.mkdirSync(out, { recursive: true });
    for (const [name, g] of Object.entries(golden)) fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(g, null, 2) + '\n');
    fs.writeFileSync(
      path.join(out, 'README.md'),
      [
        '# LXD 5.0.2 golden shapes',
        '',
        `Recorded by \`node dist/bench/lxd-shapes.js\` (bench/lxd-shapes.ts) from a private LXD ${lxd.version}`,
        'over its unix socket (a trusted client). Each file: the request, the HTTP status, which of',
        'ETag/Location came back, and the shape of the body (test/helpers/shape.ts). The instance',
        `ran our Debian image with a profile adding a NIC on a bridge with no address, a custom`,
        'volume as a disk device, and two snapshots; event-* are the first event of each kind seen',
        'on /1.0/events while the instance started and snapshotted.',
        '',
      ].join('\n'),
    );
    log(`wrote ${Object.keys(golden).length} goldens to ${out}`);
  } catch (e) {
    failed = true;
    log(`FAILED: ${(e as Error).stack ?? e}`);
  } finally {
    const problems: string[] = [];
    if (lxd.pid !== undefined) {
      // Instances first (the stop frees the bridge), then the bridge and volumes, then the daemon.
      await lxd.lxc(['delete', '--force', INSTANCE], { duringCleanup: true });
      await lxd.lxc(['storage', 'volume', 'delete', lxd.pools[0].name, VOLUME], { duringCleanup: true });
      await lxd.lxc(['profile', 'delete', PROFILE], { duringCleanup: true });
      for (const [made, br] of [
        [bridgeMade, BRIDGE],
        [bridge2Made, `${BRIDGE}b`],
      ] as const) {
        if (made && fs.existsSync(`/sys/class/net/${br}`)) {
          const d = await lxd.lxc(['network', 'delete', br], { duringCleanup: true });
          if (d.code !== 0) problems.push(`lxc network delete ${br}: ${d.stderr.trim()}`);
        }
      }
    }
    problems.push(...(await lxd.cleanup(log)));
    for (const br of [BRIDGE, `${BRIDGE}b`]) {
      if (fs.existsSync(`/sys/class/net/${br}`)) {
        await run('ip', ['link', 'del', br], { duringCleanup: true });
        problems.push(`bridge ${br} removed with ip link del`);
      }
    }
    problems.push(...(await env.cleanup(log)));
    for (const p of problems) log(`cleanup problem: ${p}`);
    process.exitCode = failed || problems.length ? 1 : 0;
  }
}

await main();
