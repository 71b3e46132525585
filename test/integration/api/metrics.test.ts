import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { ApiServer, run } from '../../helpers/api.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { metricFamilies, promtoolLint } from '../../helpers/metrics.js';

/**
 * GET /1.0/metrics against running busybox containers: the same metric names, types and label
 * names as LXD 5.0.2's answer (test/fixtures/lxd-5.0.2/metrics.txt), promtool parses it and finds
 * nothing LXD's own answer does not have, a `metrics` certificate reads the metrics and nothing
 * else, a restricted certificate sees only its instances' series.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apimetrics');
  let server: ApiServer;
  const lxdText = fs.readFileSync(path.join(repoRoot, 'test/fixtures/lxd-5.0.2/metrics.txt'), 'utf8');

  /** A self-signed client certificate, as `lxc` makes one. */
  const clientCert = async (name: string) => {
    const key = path.join(env.root, `${name}.key`);
    const crt = path.join(env.root, `${name}.crt`);
    const r = await run('openssl', [
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
      `/CN=${name}`,
      '-keyout',
      key,
      '-out',
      crt,
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
    return { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(crt, 'utf8') };
  };
  const httpsReq = (client: { key: string; cert: string }, method: string, urlPath: string, body?: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const [host, port] = server.httpsAddresses[0]!.split(':');
      const req = https.request({ host, port: Number(port), method, path: urlPath, rejectUnauthorized: false, ...client }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const token = (t: ExecutionContext, args: string[]) =>
    env
      .ok(t, ['config', 'trust', 'add', ...args])
      .trim()
      .split('\n')
      .pop()!;

  test.before(async () => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const [c, start] of [
      ['m-a1', true],
      ['m-b1', true],
      ['m-c1', false],
    ] as const) {
      const l = env.cli([start ? 'launch' : 'create', 'busybox', c]);
      if (l.code !== 0) throw new Error(l.stderr);
    }
    server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']);
  });
  test.serial.after.always('server', async () => {
    await server?.stop();
  });
  leftoverHooks(test, env);

  test.serial("the running containers' series carry LXD 5.0.2's names, types and labels", async (t) => {
    const t0 = process.hrtime.bigint();
    const r = await server.request('GET', '/1.0/metrics');
    t.log(`one scrape, 2 running of 3: ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
    t.is(r.status, 200);
    t.regex(String(r.headers['content-type']), /^text\/plain/);
    t.true(r.body.endsWith('# EOF\n'));
    const ours = metricFamilies(r.body);
    const lxd = metricFamilies(lxdText);
    t.deepEqual([...ours.keys()], [...lxd.keys()], 'the same families in the same order');
    for (const [name, f] of lxd) {
      t.is(ours.get(name)?.type, f.type, name);
      t.deepEqual(ours.get(name)?.labelNames, f.labelNames, `${name}'s label names`);
    }
    t.regex(r.body, /^lxd_procs_total\{name="m-a1",project="default",type="container"\} [1-9]\d*$/m);
    t.regex(r.body, /^lxd_network_receive_bytes_total\{device="lo",name="m-b1",project="default",type="container"\} \d+$/m);
    t.regex(r.body, /^lxd_cpu_seconds_total\{cpu="\d+",mode="user",name="m-a1",project="default",type="container"\} [\d.e+-]+$/m);
    t.regex(r.body, /^lxd_filesystem_size_bytes\{device="",fstype="\w+",mountpoint="\/",name="m-a1",project="default"\} [1-9]/m);
    t.notRegex(r.body, /m-c1/, 'a stopped container has no series');
    const total = Number(/^lxd_memory_MemTotal_bytes\{name="m-a1".*\} (\S+)$/m.exec(r.body)?.[1]);
    const free = Number(/^lxd_memory_MemFree_bytes\{name="m-a1".*\} (\S+)$/m.exec(r.body)?.[1]);
    t.true(total > 0 && free > 0 && free < total);
  });

  test.serial('promtool parses it and finds nothing LXD 5.0.2 does not have too', async (t) => {
    const ours = await promtoolLint((await server.request('GET', '/1.0/metrics')).body);
    const lxd = await promtoolLint(lxdText);
    t.not(ours.code, 1, ours.output);
    t.deepEqual(
      ours.problems.filter((p) => !lxd.problems.includes(p)),
      [],
    );
  });

  test.serial('a metrics certificate reads /1.0/metrics and nothing else', async (t) => {
    const prom = await clientCert('prom');
    const add = await server.request('POST', '/1.0/certificates', { type: 'metrics', name: 'prom', certificate: prom.cert });
    t.is(add.status, 201, add.body);
    const m = await httpsReq(prom, 'GET', '/1.0/metrics');
    t.is(m.status, 200);
    t.regex(m.body, /name="m-a1"/);
    for (const p of ['/1.0/instances', '/1.0/certificates', '/1.0/operations', '/1.0/labs']) t.is((await httpsReq(prom, 'GET', p)).status, 403, p);
    t.is((await httpsReq(prom, 'PUT', '/1.0/instances/m-a1/state', { action: 'stop', force: true })).status, 403);
    const info = await httpsReq(prom, 'GET', '/1.0');
    t.is(JSON.parse(info.body).metadata.auth, 'untrusted');

    // The same through a token: `config trust add NAME --type metrics`.
    const prom2 = await clientCert('prom2');
    const redeem = await httpsReq(prom2, 'POST', '/1.0/certificates', { type: 'client', password: token(t, ['prom2', '--type', 'metrics']) });
    t.is(redeem.status, 201, redeem.body);
    t.regex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /^prom2,metrics,/m);
    t.is((await httpsReq(prom2, 'GET', '/1.0/metrics')).status, 200);
    t.is((await httpsReq(prom2, 'GET', '/1.0/instances')).status, 403);
  });

  test.serial("a restricted certificate sees only its instances' series", async (t) => {
    const alice = await clientCert('alice');
    const redeem = await httpsReq(alice, 'POST', '/1.0/certificates', { type: 'client', password: token(t, ['alice', '--instances', 'm-a*']) });
    t.is(redeem.status, 201, redeem.body);
    await new Promise((r) => setTimeout(r, 1600)); // past the shared collection
    const m = await httpsReq(alice, 'GET', '/1.0/metrics');
    t.is(m.status, 200);
    t.regex(m.body, /name="m-a1"/);
    t.notRegex(m.body, /name="m-b1"/);
  });

  test.serial('overlapping scrapes share one collection; other requests go on meanwhile', async (t) => {
    await new Promise((r) => setTimeout(r, 1600));
    const [a, b, info] = await Promise.all([server.request('GET', '/1.0/metrics'), server.request('GET', '/1.0/metrics'), server.request('GET', '/1.0')]);
    t.is(a.status, 200);
    t.is(info.status, 200);
    t.is(a.body, b.body);
  });
}
