import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import test from 'ava';
import { allowsInstance } from '../../../lib/api/access.js';
import { sync, type Route } from '../../../lib/api/types.js';
import { requireRoot } from '../../helpers/env.js';
import { inProcessSuite, run, type Json } from '../../helpers/api.js';

/**
 * Trust over HTTPS with the real `lxc` 5.0 client: `lxc remote add` with a token and with
 * --password, tokens that are used, wrong or expired, an untrusted client, and a restricted
 * certificate that sees only its instances (a stub route lists names through allowsInstance).
 */
if (requireRoot(test)) {
  const stub: Route = {
    method: 'GET',
    path: '/1.0/test/instances',
    handler: async (req) => sync(['c1', 'c2', 'd1'].filter((n) => allowsInstance(req.identity, n))),
  };

  const suite = inProcessSuite(test, 'apitrust', stub);
  const env = suite.env;

  let confs = 0;
  const lxc = (args: string[], conf = `${env.root}/conf-${++confs}`) =>
    run('lxc', args, { env: { ...process.env, LXD_CONF: conf, HOME: env.root, LXD_DIR: '/nonexistent' }, timeoutMs: 60_000 });
  const token = (name: string, ...extra: string[]) => {
    const r = env.cli(['config', 'trust', 'add', name, ...extra]);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim().split('\n').pop()!;
  };
  const address = () => suite.server.addresses[0]!;

  /** A request with a client certificate the server does not trust (or none). */
  const untrusted = (method: string, path: string, body?: string, client?: { cert: string; key: string }) =>
    new Promise<{ status: number; json: Json }>((resolve, reject) => {
      const [host, port] = address().split(':');
      const req = https.request({ host, port: Number(port), method, path, rejectUnauthorized: false, ...client }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
      });
      req.on('error', reject);
      req.end(body);
    });

  test.serial('the token names this server: fingerprint and address', (t) => {
    const doc = JSON.parse(Buffer.from(token('peek'), 'base64').toString()) as Json;
    t.is(doc.client_name, 'peek');
    t.is(doc.fingerprint, suite.server.fingerprint);
    t.deepEqual(doc.addresses, [address()]);
    t.regex(doc.secret, /^[0-9a-f]{64}$/);
    t.true(Date.parse(doc.expires_at) > Date.now());
    env.ok(t, ['config', 'trust', 'remove', 'peek']);
  });

  test.serial('lxc remote add NAME TOKEN, then the remote is trusted', async (t) => {
    const conf = `${env.root}/conf-alice`;
    const add = await lxc(['remote', 'add', 'r', token('alice')], conf);
    t.is(add.code, 0, add.stderr);
    const q = await lxc(['query', 'r:/1.0'], conf);
    t.is(q.code, 0, q.stderr);
    t.is(JSON.parse(q.stdout).auth, 'trusted');
    t.deepEqual(JSON.parse((await lxc(['query', 'r:/1.0/test/instances'], conf)).stdout), ['c1', 'c2', 'd1']);
    const list = env.ok(t, ['config', 'trust', 'list', '--format', 'csv']);
    t.regex(list, /^alice,client,[0-9a-f]{12},\(all\),/m);
  });

  test.serial('lxc remote add NAME https://H:P --password=TOKEN', async (t) => {
    const conf = `${env.root}/conf-bob`;
    const add = await lxc(['remote', 'add', 'r', `https://${address()}`, '--accept-certificate', `--password=${token('bob')}`], conf);
    t.is(add.code, 0, add.stderr);
    t.is(JSON.parse((await lxc(['query', 'r:/1.0'], conf)).stdout).auth, 'trusted');
  });

  test.serial('a restricted certificate sees only the instances its glob matches', async (t) => {
    const conf = `${env.root}/conf-carol`;
    const add = await lxc(['remote', 'add', 'r', token('carol', '--instances', 'c*')], conf);
    t.is(add.code, 0, add.stderr);
    t.deepEqual(JSON.parse((await lxc(['query', 'r:/1.0/test/instances'], conf)).stdout), ['c1', 'c2']);
    // It cannot make others trusted.
    const post = await lxc(['query', '-X', 'POST', '--data', '{"name":"x","certificate":""}', 'r:/1.0/certificates'], conf);
    t.not(post.code, 0);
    t.regex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /^carol,client,[0-9a-f]{12},c\*,/m);
  });

  test.serial('a used token is refused', async (t) => {
    const tok = token('dave');
    t.is((await lxc(['remote', 'add', 'r', tok])).code, 0);
    const again = await lxc(['remote', 'add', 'r', tok]);
    t.not(again.code, 0);
    t.regex(again.stderr, /token/i);
  });

  test.serial('a wrong token and an expired token are refused', async (t) => {
    const wrong = await lxc(['remote', 'add', 'r', `https://${address()}`, '--accept-certificate', '--password=not-a-token']);
    t.not(wrong.code, 0);
    const tok = token('erin', '--expires', '1s');
    await new Promise((r) => setTimeout(r, 1500));
    const late = await lxc(['remote', 'add', 'r', tok]);
    t.not(late.code, 0);
    t.notRegex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /^erin,/m);
  });

  test.serial('an untrusted client gets GET /1.0 (untrusted form) and 403 everywhere else', async (t) => {
    const info = await untrusted('GET', '/1.0');
    t.is(info.status, 200);
    t.is(info.json.metadata.auth, 'untrusted');
    t.is(info.json.metadata.environment, undefined);
    for (const [method, path] of [
      ['GET', '/1.0/operations'],
      ['GET', '/1.0/certificates'],
      ['GET', '/1.0/test/instances'],
      ['PUT', '/1.0'],
      ['GET', '/1.0/events'],
    ]) {
      const r = await untrusted(method!, path!);
      t.is(r.status, 403, `${method} ${path}`);
      t.is(r.json.error_code, 403);
    }
    const noToken = await untrusted('POST', '/1.0/certificates', '{"type":"client"}');
    t.true(noToken.status === 400 || noToken.status === 403);
  });

  test.serial('TLS below 1.3 is refused', async (t) => {
    const [host, port] = address().split(':');
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ host, port: Number(port), maxVersion: 'TLSv1.2', rejectUnauthorized: false }, () => {
        s.end();
        resolve(undefined);
      });
      s.on('error', resolve);
    });
    t.truthy(err);
  });

  test.serial('repeated failures from one address are slowed', async (t) => {
    const key = `${env.root}/client.key`;
    const cert = `${env.root}/client.crt`;
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=fuzz',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    t.is(made.status, 0, made.stderr?.toString());
    const client = { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8') };
    // Earlier tests failed from this address already; a few more are answered late.
    let last = 0;
    for (let i = 0; i < 3; i++) {
      const start = Date.now();
      const r = await untrusted('POST', '/1.0/certificates', '{"password":"nope"}', client);
      t.is(r.status, 403);
      last = Date.now() - start;
    }
    t.true(last >= 400, `the last failure took ${last} ms`);
  });

  /** The `lxc` client over this server's unix socket (always trusted). */
  const lxcLocal = (args: string[], input?: string) =>
    run('lxc', args, {
      env: { ...process.env, LXD_CONF: `${env.root}/conf-local`, HOME: env.root, LXD_DIR: env.paths.stateDir, LXD_SOCKET: '' },
      input,
      timeoutMs: 60_000,
    });

  test.serial('lxc config trust add: a token operation; lxc remote add with it; list-tokens, revoke-token', async (t) => {
    const add = await lxcLocal(['config', 'trust', 'add', '--name', 'gina']);
    t.is(add.code, 0, add.stderr);
    t.regex(add.stdout, /Client gina certificate add token:/);
    const tok = add.stdout.trim().split('\n').pop()!;
    const doc = JSON.parse(Buffer.from(tok, 'base64').toString()) as Json;
    t.is(doc.client_name, 'gina');
    t.is(doc.fingerprint, suite.server.fingerprint);
    t.deepEqual(doc.addresses, [address()]);
    const pending = await lxcLocal(['config', 'trust', 'list-tokens', '--format', 'csv']);
    t.is(pending.code, 0, pending.stderr);
    t.regex(pending.stdout, /^gina,/m);
    const conf = `${env.root}/conf-gina`;
    const remote = await lxc(['remote', 'add', 'r', tok], conf);
    t.is(remote.code, 0, remote.stderr);
    t.is(JSON.parse((await lxc(['query', 'r:/1.0'], conf)).stdout).auth, 'trusted');
    t.regex((await lxcLocal(['config', 'trust', 'list', '--format', 'csv'])).stdout, /gina/);
    // The token operation ended with its use.
    for (let i = 0; i < 30 && /^gina,/m.test((await lxcLocal(['config', 'trust', 'list-tokens', '--format', 'csv'])).stdout); i++)
      await new Promise((r) => setTimeout(r, 200));
    t.notRegex((await lxcLocal(['config', 'trust', 'list-tokens', '--format', 'csv'])).stdout, /^gina,/m);

    // A token revoked is gone from the store.
    t.is((await lxcLocal(['config', 'trust', 'add', '--name', 'hank'])).code, 0);
    const revoke = await lxcLocal(['config', 'trust', 'revoke-token', 'hank']);
    t.is(revoke.code, 0, revoke.stderr);
    for (let i = 0; i < 30 && /hank/.test(env.ok(t, ['config', 'trust', 'list', '--format', 'csv'])); i++) await new Promise((r) => setTimeout(r, 100));
    t.notRegex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /hank/);
    // --restricted without an instance glob is refused in one line.
    const restricted = await lxcLocal(['config', 'trust', 'add', '--name', 'ivan', '--restricted']);
    t.not(restricted.code, 0);
    t.regex(restricted.stderr, /tslxc\.instances/);
  });

  test.serial('PUT and PATCH /1.0/certificates/FP: name, restriction (tslxc.instances), ETag; DELETE', async (t) => {
    const conf = `${env.root}/conf-judy`;
    t.is((await lxc(['remote', 'add', 'r', token('judy')], conf)).code, 0);
    const fp = (JSON.parse((await lxcLocal(['query', '/1.0/certificates?recursion=1'])).stdout) as Json[]).find((c) => c.name === 'judy').fingerprint;
    const url = `/1.0/certificates/${fp}`;
    const get = async () => JSON.parse((await lxcLocal(['query', url])).stdout) as Json;
    t.is((await get()).restricted, false);
    // PATCH: restricted to c* with the tslxc key; the client then sees only c1, c2.
    const patch = await lxcLocal(['query', '-X', 'PATCH', '--data', JSON.stringify({ restricted: true, 'tslxc.instances': 'c*' }), url]);
    t.is(patch.code, 0, patch.stderr);
    t.like(await get(), { name: 'judy', restricted: true, 'tslxc.instances': 'c*' });
    t.deepEqual(JSON.parse((await lxc(['query', 'r:/1.0/test/instances'], conf)).stdout), ['c1', 'c2']);
    // PUT of the object as LXD's client sends it back (no tslxc key): the glob stays; a new name.
    const cur = await get();
    const put = await lxcLocal([
      'query',
      '-X',
      'PUT',
      '--data',
      JSON.stringify({ name: 'judith', type: 'client', restricted: true, projects: [], certificate: cur.certificate }),
      url,
    ]);
    t.is(put.code, 0, put.stderr);
    t.like(await get(), { name: 'judith', restricted: true, 'tslxc.instances': 'c*' });
    // lxc config trust edit: a YAML round trip through GET and PUT with If-Match.
    const edit = await lxcLocal(['config', 'trust', 'edit', fp], `name: judy\ntype: client\nrestricted: false\nprojects: []\ncertificate: ""\n`);
    t.is(edit.code, 0, edit.stderr);
    const after = await get();
    t.is(after.name, 'judy');
    t.is(after.restricted, false);
    t.is(after['tslxc.instances'], undefined);
    t.deepEqual(JSON.parse((await lxc(['query', 'r:/1.0/test/instances'], conf)).stdout), ['c1', 'c2', 'd1']);
    // A stale ETag, another certificate, a project, a taken name: refused.
    const server0 = await fetchLocal('PUT', url, { name: 'x', type: 'client', restricted: false, projects: [] }, { 'If-Match': '"0000"' });
    t.is(server0.status, 412);
    t.is((await fetchLocal('PATCH', url, { projects: ['p1'] })).status, 400);
    t.is((await fetchLocal('PATCH', url, { restricted: true, 'tslxc.instances': 'Bad Glob' })).status, 400);
    t.is((await fetchLocal('PATCH', url, { type: 'server' })).status, 400);
    // DELETE: no longer trusted.
    const del = await lxcLocal(['config', 'trust', 'remove', fp]);
    t.is(del.code, 0, del.stderr);
    t.not((await lxc(['query', 'r:/1.0/operations'], conf)).code, 0);
  });

  /** A JSON request over the unix socket, for statuses the client does not show. */
  const fetchLocal = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; json: Json }>((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          socketPath: `${env.paths.stateDir}/unix.socket`,
          method,
          path,
          headers: { 'Content-Type': 'application/json', 'Content-Length': String(data.length), ...headers },
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });

  test.serial('config trust remove: the certificate is no longer trusted', async (t) => {
    const conf = `${env.root}/conf-frank`;
    t.is((await lxc(['remote', 'add', 'r', token('frank')], conf)).code, 0);
    env.ok(t, ['config', 'trust', 'remove', 'frank']);
    const q = await lxc(['query', 'r:/1.0/operations'], conf);
    t.not(q.code, 0);
    const r = env.cli(['config', 'trust', 'remove', 'frank']);
    t.is(r.code, 1);
    t.regex(r.stderr, /not in the trust store/);
  });
}
