import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { WebSocket } from 'ws';
import { routes } from '../../../lib/api/routes/index.js';
import { requireRoot } from '../../helpers/env.js';
import { apiSuite } from '../../helpers/api.js';

/**
 * Fuzz of `tslxc serve` (the built launcher): every route that takes a body gets malformed JSON,
 * wrong types, deep nesting and huge bodies; the websocket endpoints get bad frames, bad secrets
 * and half-open connections; slow clients are dropped. The server never answers 5xx, never
 * drops a request without an answer, and keeps serving.
 */

/** The server's own routes (lib/api/core/), next to the route modules'. */
const CORE: Array<{ method: string; path: string }> = [
  { method: 'PUT', path: '/1.0' },
  { method: 'PATCH', path: '/1.0' },
  { method: 'POST', path: '/1.0/certificates' },
  { method: 'DELETE', path: '/1.0/certificates/{fingerprint}' },
  { method: 'DELETE', path: '/1.0/operations/{id}' },
  { method: 'GET', path: '/1.0/operations/{id}/wait' },
];

/** A small seeded generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const FIELDS = [
  'name',
  'config',
  'devices',
  'profiles',
  'source',
  'action',
  'timeout',
  'force',
  'stateful',
  'restore',
  'description',
  'type',
  'password',
  'certificate',
  'command',
  'environment',
  'interactive',
  'wait-for-websocket',
  'width',
  'height',
  'user',
  'group',
  'cwd',
  'ephemeral',
  'architecture',
  'aliases',
  'public',
  'properties',
  'target',
  'alias',
  'fingerprint',
  'expires_at',
  'migration',
  'live',
];

function value(rand: () => number, depth = 0): unknown {
  const pick = Math.floor(rand() * (depth > 2 ? 6 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return Math.floor(rand() * 2 ** 40) - 2 ** 39;
    case 3:
      return ['', 'fuzz', '../../etc/passwd', '\u0000', 'x'.repeat(5000), '-1', 'true', '*'][Math.floor(rand() * 8)];
    case 4:
      return rand() * 1e308;
    case 5:
      return 'start';
    case 6:
      return Array.from({ length: Math.floor(rand() * 4) }, () => value(rand, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 5) }, () => [FIELDS[Math.floor(rand() * FIELDS.length)]!, value(rand, depth + 1)]));
  }
}

function bodies(rand: () => number): Array<string | Buffer> {
  const out: Array<string | Buffer> = [
    '{',
    '{"a":',
    'nul',
    '[]]',
    Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
    'null',
    '1',
    '"s"',
    '[]',
    'true',
    '{}',
    `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
  ];
  for (let i = 0; i < 25; i++) out.push(JSON.stringify(value(rand)));
  return out;
}

/** The image upload bound the fuzz server is given: small, so that going past it is quick. */
const UPLOAD_LIMIT = 2 * 1024 * 1024;

if (requireRoot(test)) {
  // A fuzzed body that happened to be a valid network would have made a real bridge.
  const suite = apiSuite(test, 'apifuzz', { env: { TSLXC_API_MAX_UPLOAD: String(UPLOAD_LIMIT) }, networks: true });
  const env = suite.env;

  const alive = async (t: { is: (a: unknown, b: unknown, m?: string) => void }) => {
    t.is((await suite.server.request('GET', '/1.0')).status, 200, 'the server still answers');
  };

  test.serial('every route with a body: malformed, wrong types, deep nesting: never 5xx', async (t) => {
    const rand = prng(18);
    const targets = [...CORE, ...routes.map((r) => ({ method: r.method, path: r.path }))].filter((r) => r.method !== 'GET' || r.path.endsWith('/wait'));
    const params = ['fuzz1', 'c1', '..', '%00', 'x'.repeat(300), '%2e%2e%2fetc'];
    const failures: string[] = [];
    for (const r of targets) {
      for (const body of bodies(rand)) {
        const p = r.path.replace(/\{[^}]+\}/g, () => params[Math.floor(rand() * params.length)]!);
        const query = r.path.endsWith('/wait') ? '?timeout=0' : '';
        let status: number;
        try {
          status = (await suite.server.request(r.method, p + query, body, { 'Content-Type': 'application/json' })).status;
        } catch (err) {
          failures.push(`${r.method} ${p}: ${(err as Error).message}`);
          continue;
        }
        if (status >= 500) failures.push(`${r.method} ${p} ${String(body).slice(0, 80)} -> ${status}`);
      }
    }
    t.deepEqual(failures, []);
    await alive(t);
  });

  test.serial('a JSON body over 1 MiB is 413 on every route with a body', async (t) => {
    const huge = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
    for (const r of [...CORE.filter((c) => c.method !== 'DELETE' && c.method !== 'GET'), { method: 'POST', path: '/1.0/certificates' }]) {
      for (const fresh of [false, true]) {
        const res = await suite.server.request(r.method, r.path, huge, {}, { fresh });
        t.is(res.status, 413, `${r.method} ${r.path}${fresh ? ' (fresh connection)' : ''}`);
      }
    }
    await alive(t);
  });

  // The answer comes while the client is still writing: the server must read on before it closes,
  // or a one-shot client sees EPIPE or ECONNRESET instead of the 413.
  test.serial('a body of several MiB on a fresh connection each time: the client reads the 413', async (t) => {
    for (const mib of [2, 3, 6]) {
      const big = Buffer.alloc(mib * 1024 * 1024, 'x');
      for (let i = 0; i < 5; i++) {
        const res = await suite.server.request('POST', '/1.0/certificates', big, { 'Content-Type': 'application/json' }, { fresh: true });
        t.is(res.status, 413, `${mib} MiB, try ${i}`);
      }
    }
    // Sent without a length, cut off at the limit as it streams in.
    const chunked = await suite.server.request(
      'POST',
      '/1.0/certificates',
      Buffer.alloc(3 * 1024 * 1024, 'x'),
      { 'Transfer-Encoding': 'chunked' },
      { fresh: true },
    );
    t.is(chunked.status, 413);
    await alive(t);
  });

  test.serial('an image upload over its bound (TSLXC_API_MAX_UPLOAD): the client reads the 413', async (t) => {
    const big = Buffer.alloc(UPLOAD_LIMIT + 6 * 1024 * 1024, 'x');
    for (let i = 0; i < 5; i++) {
      const declared = await suite.server.request('POST', '/1.0/images', big, { 'Content-Type': 'application/octet-stream' }, { fresh: true });
      t.is(declared.status, 413, declared.body);
      // Sent without a length: cut off as it streams in past the bound.
      const streamed = await suite.server.request(
        'POST',
        '/1.0/images',
        big,
        { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
        { fresh: true },
      );
      t.is(streamed.status, 413, streamed.body);
    }
    t.deepEqual(
      fs.readdirSync(`${env.paths.stateDir}/images`).filter((n) => n.startsWith('.tmp-')),
      [],
      'nothing half-made stays in the store',
    );
    await alive(t);
  });

  /** Raw bytes on a new connection to the socket; resolves with what came back when it closed. */
  const raw = (data: Buffer | string, opts: { waitMs?: number } = {}) =>
    new Promise<string>((resolve) => {
      const s = net.connect(suite.server.socket);
      let got = '';
      const timer = setTimeout(() => s.destroy(), opts.waitMs ?? 5000);
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
      s.on('error', () => {});
      s.write(data);
    });

  const upgradeHead = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\n\r\n`;

  test.serial('websocket framing: garbage, oversized and unmasked frames close the socket; the server stays up', async (t) => {
    const frames = [
      Buffer.from('not a frame at all, just bytes \x00\xff'),
      // a binary frame declaring 2^40 bytes
      Buffer.from([0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
      // an unmasked text frame (clients must mask)
      Buffer.from([0x81, 0x02, 0x68, 0x69]),
      // a reserved opcode
      Buffer.from([0x83, 0x80, 1, 2, 3, 4]),
    ];
    for (const f of frames) {
      const got = await raw(Buffer.concat([Buffer.from(upgradeHead('/1.0/events')), f]));
      t.regex(got, /^HTTP\/1\.1 101/);
    }
    await alive(t);
  });

  test.serial('websocket endpoints: wrong secrets, unknown operations and types are 4xx', async (t) => {
    t.regex(await raw(upgradeHead('/1.0/operations/nope/websocket?secret=abc')), /^HTTP\/1\.1 403/);
    t.regex(await raw(upgradeHead('/1.0/events?type=bogus')), /^HTTP\/1\.1 400/);
    t.regex(await raw(upgradeHead('/1.0/nothing')), /^HTTP\/1\.1 404/);
    t.regex(await raw('GARBAGE / HTTP/9\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.is((await suite.server.request('GET', '/1.0/events')).status, 400);
    await alive(t);
  });

  test.serial('50 event listeners, half of them not reading: the others get the events', async (t) => {
    const listeners = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws+unix://${suite.server.socket}:/1.0/events?type=lifecycle`);
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    // Half of them stop reading, as a client that hung would.
    for (const ws of listeners.slice(0, 25)) (ws as unknown as { _socket: net.Socket })._socket.pause();
    const received = listeners.slice(25).map(
      (ws) =>
        new Promise<string>((resolve) => {
          ws.once('message', (d) => resolve(JSON.parse(d.toString()).metadata.action));
          setTimeout(() => resolve('nothing'), 10_000);
        }),
    );
    const key = `${env.root}/c.key`;
    const crt = `${env.root}/c.crt`;
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=ev',
      '-keyout',
      key,
      '-out',
      crt,
    ]);
    t.is(made.status, 0);
    const add = await suite.server.request('POST', '/1.0/certificates', { name: 'ev', type: 'client', certificate: fs.readFileSync(crt, 'utf8') });
    t.is(add.status, 201, add.body);
    t.deepEqual(new Set(await Promise.all(received)), new Set(['certificate-created']));
    for (const ws of listeners) ws.terminate();
    await alive(t);
  });

  test.serial('slow clients are dropped: headers never finished, bodies never sent', async (t) => {
    const start = Date.now();
    const [headers, body] = await Promise.all([
      raw('GET /1.0 HTTP/1.1\r\nHost: x\r\n', { waitMs: 40_000 }),
      raw('PUT /1.0 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"con', { waitMs: 40_000 }),
      // Meanwhile others are served.
      alive(t),
    ]);
    t.true(Date.now() - start < 30_000, 'both were closed by the server');
    t.regex(headers, /^$|^HTTP\/1\.1 408/);
    t.regex(body, /^$|^HTTP\/1\.1 4\d\d/);
    await alive(t);
  });
}
