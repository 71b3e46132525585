import { spawn } from 'node:child_process';
import test from 'ava';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite, type Json, type Reply } from '../../helpers/api.js';
import { compareShapes, loadGolden, shapeOf } from '../../helpers/shape.js';
import { routes } from '../../../lib/api/routes/index.js';

/**
 * Instances and snapshots through `tslxc serve`, driven by the real `lxc` 5.0 client and pylxd
 * 2.2 over the unix socket, beside the CLI on the same state; the answers' shapes against LXD
 * 5.0.2's goldens.
 */
if (requireRoot(test)) {
  const suite = apiSuite(test, 'apiinst', { images: ['busybox'] });
  const env = suite.env;

  const lxc = async (t: Parameters<typeof env.ok>[0], args: string[]) => {
    const r = await suite.server.lxc(args, { conf: suite.conf });
    t.is(r.code, 0, `lxc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** An async request, then its operation waited for: the finished operation. */
  const waited = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ reply: Reply; op: Json }> => {
    const reply = await suite.server.request(method, path, body, headers);
    if (reply.status !== 202) return { reply, op: undefined };
    const w = await suite.server.request('GET', `${reply.json!.operation}/wait?timeout=60`);
    return { reply, op: w.json!.metadata };
  };
  const listed = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name);

  test.serial('lxc: list (table, csv, json), info, start, stop, restart, config set/unset, beside the CLI', async (t) => {
    env.ok(t, ['create', 'busybox', 'a1']);
    t.regex(await lxc(t, ['list']), /\| a1 +\| STOPPED/);
    t.is((await lxc(t, ['list', '--format', 'csv', '-c', 'ns'])).trim(), 'a1,STOPPED');
    await lxc(t, ['start', 'a1']);
    t.is(listed('a1').status, 'Running', 'the CLI sees what the API did');
    const pid = listed('a1').state.pid;
    t.true(pid > 1);
    // The same objects: lxc list's JSON and tslxc list's, but for what a read may change.
    const theirs = JSON.parse(await lxc(t, ['list', '--format', 'json']));
    const ours = JSON.parse(env.ok(t, ['list', '--format', 'json']));
    // Go prints times in its own way (no trailing zeros): the same instant is the same time.
    const time = (_k: string, v: unknown) => (typeof v === 'string' && /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(v) ? Date.parse(v) : v);
    const stable = (l: Json[]) =>
      JSON.parse(
        JSON.stringify(
          l.map((i: Json) => ({ ...i, state: { pid: i.state.pid, status: i.state.status } })),
          time,
        ),
      );
    t.deepEqual(stable(theirs), stable(ours));
    t.regex(await lxc(t, ['info', 'a1']), new RegExp(`Status: RUNNING[\\s\\S]*PID: ${pid}`));
    t.deepEqual(JSON.parse(env.ok(t, ['info', 'a1', '--format', 'json'])).state.pid, pid);
    await lxc(t, ['config', 'set', 'a1', 'user.note', 'hello']);
    t.is((await lxc(t, ['config', 'get', 'a1', 'user.note'])).trim(), 'hello');
    t.regex(env.ok(t, ['config', 'show', 'a1']), /user.note: hello/);
    await lxc(t, ['config', 'unset', 'a1', 'user.note']);
    t.notRegex(await lxc(t, ['config', 'show', 'a1']), /user.note/);
    const bad = await suite.server.lxc(['config', 'set', 'a1', 'limits.memory', 'lots'], { conf: suite.conf });
    t.not(bad.code, 0);
    t.regex(bad.stderr, /limits\.memory/);
    await lxc(t, ['restart', 'a1']);
    t.not(listed('a1').state.pid, pid);
    await lxc(t, ['pause', 'a1']);
    t.is(listed('a1').status, 'Frozen');
    await lxc(t, ['start', 'a1']);
    t.is(listed('a1').status, 'Running', 'start thaws a paused one, as in LXD');
    const del = await suite.server.lxc(['delete', 'a1'], { conf: suite.conf });
    t.not(del.code, 0, 'a running instance is not deleted');
    await lxc(t, ['stop', 'a1']);
    t.is(listed('a1').status, 'Stopped');
  });

  test.serial('lxc: snapshot, restore, delete a snapshot; move renames; delete', async (t) => {
    await lxc(t, ['config', 'set', 'a1', 'user.v', 'one']);
    await lxc(t, ['snapshot', 'a1', 's1']);
    await lxc(t, ['config', 'set', 'a1', 'user.v', 'two']);
    t.regex(await lxc(t, ['info', 'a1']), /Snapshots:[\s\S]*\| s1 /);
    t.regex(env.ok(t, ['snapshot', 'list', 'a1']), /s1/);
    await lxc(t, ['restore', 'a1', 's1']);
    t.is((await lxc(t, ['config', 'get', 'a1', 'user.v'])).trim(), 'one');
    await lxc(t, ['delete', 'a1/s1']);
    t.notRegex(env.ok(t, ['snapshot', 'list', 'a1']), /s1/);
    await lxc(t, ['move', 'a1', 'b1']);
    t.truthy(listed('b1'));
    t.falsy(listed('a1'));
    await lxc(t, ['delete', 'b1']);
    t.falsy(listed('b1'));
  });

  test.serial('POST /1.0/instances from a local alias, with profiles, config and devices; ETag and If-Match', async (t) => {
    const { reply, op } = await waited('POST', '/1.0/instances', {
      name: 'p1',
      source: { type: 'image', alias: 'busybox' },
      profiles: ['default'],
      config: { 'limits.memory': '128MiB', 'user.from': 'api' },
      devices: { data: { type: 'disk', source: env.root, path: '/mnt/data' } },
    });
    t.is(reply.status, 202);
    t.is(reply.headers.location, reply.json!.operation);
    t.is(op.status_code, 200, op.err);
    const got = await suite.server.request('GET', '/1.0/instances/p1');
    t.truthy(got.headers.etag);
    t.is(got.json!.metadata.config['user.from'], 'api');
    t.is(got.json!.metadata.devices.data.path, '/mnt/data');
    const put = { ...got.json!.metadata, config: { ...got.json!.metadata.config, 'user.x': '1' } };
    const stale = await suite.server.request('PUT', '/1.0/instances/p1', put, { 'If-Match': 'not-the-etag' });
    t.is(stale.status, 412);
    t.is(stale.json!.error_code, 412);
    const fresh = await waited('PUT', '/1.0/instances/p1', put, { 'If-Match': String(got.headers.etag) });
    t.is(fresh.op.status_code, 200, fresh.op.err);
    t.is(env.ok(t, ['config', 'get', 'p1', 'user.x']).trim(), '1');
    const dup = await suite.server.request('POST', '/1.0/instances', { name: 'p1', source: { type: 'image', alias: 'busybox' } });
    t.is(dup.status, 409);
    const noimg = await waited('POST', '/1.0/instances', { name: 'p2', source: { type: 'image', alias: 'no-such-image' } });
    t.is(noimg.op.status_code, 400);
    t.regex(noimg.op.err, /no-such-image/);
    t.falsy(listed('p2'), 'a failed create leaves nothing');
    const baddev = await suite.server.request('POST', '/1.0/instances', {
      name: 'p3',
      source: { type: 'image', alias: 'busybox' },
      devices: { x: { type: 'bogus' } },
    });
    t.is(baddev.status, 400);
    t.is((await suite.server.request('GET', '/1.0/instances/nope')).status, 404);
    t.is((await suite.server.request('GET', '/1.0/instances?filter=name+eq+p1')).json!.metadata.length, 1);
    t.deepEqual((await suite.server.request('GET', '/1.0/instances?filter=status+eq+Running')).json!.metadata, []);
  });

  test.serial('lifecycle events on /1.0/events', async (t) => {
    const monitor = spawn('lxc', ['monitor', '--type', 'lifecycle'], {
      env: { ...process.env, LXD_DIR: env.paths.stateDir, LXD_CONF: suite.conf, HOME: env.root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    monitor.stdout.on('data', (d) => (out += d));
    await new Promise((r) => setTimeout(r, 1000));
    await lxc(t, ['start', 'p1']);
    await lxc(t, ['snapshot', 'p1', 'e1']);
    await lxc(t, ['stop', 'p1', '--force']);
    for (let i = 0; i < 50 && !out.includes('instance-stopped'); i++) await new Promise((r) => setTimeout(r, 100));
    monitor.kill();
    for (const action of ['instance-started', 'instance-snapshot-created', 'instance-stopped']) t.regex(out, new RegExp(action), action);
    t.regex(out, /source: \/1\.0\/instances\/p1/);
  });

  test.serial("answers' shapes are LXD 5.0.2's (goldens)", async (t) => {
    await lxc(t, ['start', 'p1']);
    const same = async (golden: string, method: string, path: string, body?: unknown) => {
      const g = loadGolden(golden);
      const r = await suite.server.request(method, path, body);
      t.is(r.status, g.http_status, `${golden}: ${r.body.slice(0, 200)}`);
      for (const h of g.headers) t.truthy(r.headers[h], `${golden}: header ${h}`);
      t.deepEqual(compareShapes(shapeOf(r.json), g.shape), [], golden);
      return r;
    };
    await same('instances-recursion0', 'GET', '/1.0/instances');
    await same('instances-recursion1', 'GET', '/1.0/instances?recursion=1');
    await same('instances-recursion2', 'GET', '/1.0/instances?recursion=2');
    await same('instance', 'GET', '/1.0/instances/p1');
    await same('instance-recursion1', 'GET', '/1.0/instances/p1?recursion=1');
    await same('instance-state', 'GET', '/1.0/instances/p1/state');
    await same('snapshots-recursion0', 'GET', '/1.0/instances/p1/snapshots');
    await same('snapshots-recursion1', 'GET', '/1.0/instances/p1/snapshots?recursion=1');
    await same('snapshot', 'GET', '/1.0/instances/p1/snapshots/e1');
    const post = await same('snapshot-post', 'POST', '/1.0/instances/p1/snapshots', { name: 'e2' });
    await suite.server.request('GET', `${post.json!.operation}/wait?timeout=60`);
    const stop = await same('instance-state-put', 'PUT', '/1.0/instances/p1/state', { action: 'stop', force: true, timeout: -1 });
    await suite.server.request('GET', `${stop.json!.operation}/wait?timeout=60`);
    await same('error-not-found', 'GET', '/1.0/instances/nope');
  });

  test.serial('pylxd 2.2: containers all/get/create(wait)/start/stop/delete, snapshots', async (t) => {
    const r = await suite.server.pylxd(`
import warnings
warnings.simplefilter('ignore')
import pylxd
c = pylxd.Client()
print('all', sorted(x.name for x in c.containers.all()))
ct = c.containers.create({'name': 'py1', 'source': {'type': 'image', 'alias': 'busybox'}}, wait=True)
print('created', ct.status)
ct.start(wait=True)
print('started', c.containers.get('py1').status, c.containers.get('py1').state().pid > 1)
ct.snapshots.create('ps1', wait=True)
print('snapshots', [s.name for s in ct.snapshots.all()])
ct.snapshots.get('ps1').delete(wait=True)
ct.stop(wait=True)
print('stopped', c.containers.get('py1').status)
ct.delete(wait=True)
print('exists', c.containers.exists('py1'))
`);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ["all ['p1']", 'created Stopped', 'started Running True', "snapshots ['ps1']", 'stopped Stopped', 'exists False']);
  });

  // `lxc launch` resolves the alias through /1.0/images (apires's routes): run where they exist.
  const hasImages = routes.some((r) => r.method === 'GET' && r.path === '/1.0/images/aliases/{name}');
  (hasImages ? test.serial : test.serial.skip)('lxc launch of a local alias, then delete -f', async (t) => {
    await lxc(t, ['launch', 'busybox', 'l1']);
    t.is(listed('l1').status, 'Running');
    await lxc(t, ['delete', '-f', 'l1']);
    t.falsy(listed('l1'));
  });

  test.serial('a restricted certificate (HTTPS) sees and changes only its own instances', async (t) => {
    env.ok(t, ['create', 'busybox', 'mine1']);
    env.ok(t, ['create', 'busybox', 'other1']);
    // One server per state: the socket's own serves HTTPS too once restarted with --listen.
    await suite.server.stop();
    const srv = (suite.server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']));
    const token = env.ok(t, ['config', 'trust', 'add', 'dana', '--instances', 'mine*']).trim().split('\n').pop()!;
    const rconf = srv.lxcConf();
    const rl = (args: string[]) => srv.lxc(args, { conf: rconf });
    const add = await rl(['remote', 'add', 'r', token]);
    t.is(add.code, 0, add.stderr);
    const list = await rl(['list', 'r:', '--format', 'csv', '-c', 'n']);
    t.is(list.stdout.trim(), 'mine1', list.stderr);
    for (const args of [
      ['info', 'r:other1'],
      ['start', 'r:other1'],
      ['config', 'set', 'r:other1', 'user.x', 'y'],
      ['delete', 'r:other1'],
      ['snapshot', 'r:other1'],
    ]) {
      const r = await rl(args);
      t.not(r.code, 0, args.join(' '));
      t.regex(r.stderr, /not found/i, args.join(' '));
    }
    const create = await rl(['init', 'r:busybox', 'r:other2']);
    t.not(create.code, 0, 'creates only names its glob matches');
    await lxcOkOn(t, rl, ['config', 'set', 'r:mine1', 'user.x', 'y']);
    t.is(env.ok(t, ['config', 'get', 'mine1', 'user.x']).trim(), 'y');
    t.is(env.cli(['config', 'get', 'other1', 'user.x']).stdout.trim(), '');
    await lxcOkOn(t, rl, ['delete', 'r:mine1']);
    env.ok(t, ['delete', 'other1']);
    env.ok(t, ['config', 'trust', 'remove', 'dana']);
  });

  const lxcOkOn = async (t: Parameters<typeof env.ok>[0], fn: (a: string[]) => Promise<{ code: number; stderr: string }>, args: string[]) => {
    const r = await fn(args);
    t.is(r.code, 0, `lxc ${args.join(' ')}: ${r.stderr}`);
  };

  test.serial('cleanup through the API', async (t) => {
    const { op } = await waited('DELETE', '/1.0/instances/p1');
    t.is(op.status_code, 200, op?.err);
    t.deepEqual((await suite.server.request('GET', '/1.0/instances')).json!.metadata, []);
  });
}
