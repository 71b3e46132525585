import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite, type Json, type Reply } from '../../helpers/api.js';
import { lockHeld } from '../../../lib/util/lock.js';
import { locksDir } from '../../../lib/state/paths.js';

/**
 * Issue #18's instance-side gaps, through `tslxc serve` with the real `lxc` 5.0 client where it
 * uses them, else raw requests: description, ephemeral instances, sources "none" and "copy", bulk
 * state changes, snapshot expiry (and its pruning), a restore of a running instance under one
 * lock, and exec's recorded output with the instance's log files.
 */
if (requireRoot(test)) {
  const suite = apiSuite(test, 'apimore', { images: ['busybox'] });
  const env = suite.env;
  // The server's housekeeping (expired snapshots, ephemeral instances that stopped by themselves)
  // runs each half second here instead of each minute.
  env.env.TSLXC_API_HOUSEKEEPING_MS = '500';

  type T = Parameters<typeof env.ok>[0];
  const lxc = async (t: T, args: string[]) => {
    const r = await suite.server.lxc(args, { conf: suite.conf });
    t.is(r.code, 0, `lxc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const waited = async (method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ reply: Reply; op: Json }> => {
    const reply = await suite.server.request(method, p, body, headers);
    if (reply.status !== 202) return { reply, op: undefined };
    const w = await suite.server.request('GET', `${reply.json!.operation}/wait?timeout=60`);
    return { reply, op: w.json!.metadata };
  };
  const listed = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name);
  const until = async (cond: () => boolean | Promise<boolean>, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await cond()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  test.serial('description: create, PUT, PATCH; config show and lxc config show', async (t) => {
    const { op } = await waited('POST', '/1.0/instances', { name: 'd1', description: 'first', source: { type: 'image', alias: 'busybox' } });
    t.is(op.status_code, 200, op.err);
    const got = await suite.server.request('GET', '/1.0/instances/d1');
    t.is(got.json!.metadata.description, 'first');
    t.is(got.json!.metadata.ephemeral, false);
    t.regex(env.ok(t, ['config', 'show', 'd1']), /^description: first$/m);
    const put = await waited('PUT', '/1.0/instances/d1', { ...got.json!.metadata, description: 'second' }, { 'If-Match': String(got.headers.etag) });
    t.is(put.op.status_code, 200, put.op.err);
    t.is(listed('d1').description, 'second', "the CLI's JSON is the API's");
    const patch = await waited('PATCH', '/1.0/instances/d1', { config: { 'user.k': 'v' } });
    t.is(patch.op.status_code, 200, patch.op.err);
    t.is((await suite.server.request('GET', '/1.0/instances/d1')).json!.metadata.description, 'second', 'a PATCH without it keeps it');
    t.not((await suite.server.request('GET', '/1.0/instances/d1')).headers.etag, got.headers.etag);
    t.regex(await lxc(t, ['config', 'show', 'd1']), /^description: second$/m);
    const bad = await suite.server.request('PATCH', '/1.0/instances/d1', { description: 7 });
    t.is(bad.status, 400);
  });

  test.serial('source "none": lxc init --empty makes an instance with an empty root', async (t) => {
    await lxc(t, ['init', '--empty', 'n1']);
    const i = (await suite.server.request('GET', '/1.0/instances/n1')).json!.metadata;
    t.is(i.status, 'Stopped');
    t.is(i.config['volatile.base_image'], undefined);
    const root = await suite.server.request('GET', '/1.0/instances/n1/files?path=/');
    t.is(root.status, 200, root.body);
    t.deepEqual(root.json!.metadata, [], 'an empty root');
    await lxc(t, ['delete', 'n1']);
    t.falsy(listed('n1'));
    const remote = await suite.server.request('POST', '/1.0/instances', {
      name: 'm1',
      source: { type: 'migration', mode: 'pull', operation: 'https://x/1.0/operations/y' },
    });
    t.is(remote.status, 400);
    t.regex(remote.json!.error!, /not supported/);
    const img = await suite.server.request('POST', '/1.0/instances', { name: 'm1', source: { type: 'image', alias: 'x', server: 'https://images.example' } });
    t.is(img.status, 400);
  });

  test.serial('source "copy": lxc copy of an instance and of a snapshot; overrides on top', async (t) => {
    env.ok(t, ['config', 'set', 'd1', 'user.v', 'one']);
    env.ok(t, ['snapshot', 'create', 'd1', 's0']);
    env.ok(t, ['config', 'set', 'd1', 'user.v', 'two']);
    await lxc(t, ['copy', 'd1', 'c1']);
    t.is(listed('c1').config['user.v'], 'two');
    t.is(listed('c1').description, 'second', "the source's description comes along");
    await lxc(t, ['copy', 'd1/s0', 'c2']);
    t.is(listed('c2').config['user.v'], 'one');
    const { op } = await waited('POST', '/1.0/instances', {
      name: 'c3',
      source: { type: 'copy', source: 'd1', instance_only: true },
      config: { 'user.w': 'x' },
      description: 'a copy',
    });
    t.is(op.status_code, 200, op.err);
    const c3 = listed('c3');
    t.is(c3.config['user.v'], 'two');
    t.is(c3.config['user.w'], 'x');
    t.is(c3.description, 'a copy');
    t.deepEqual((await suite.server.request('GET', '/1.0/instances/c3/snapshots')).json!.metadata, [], 'instance_only: no snapshots');
    t.is((await suite.server.request('POST', '/1.0/instances', { name: 'c4', source: { type: 'copy', source: 'nope' } })).status, 404);
    for (const n of ['c1', 'c2', 'c3']) env.ok(t, ['delete', n]);
  });

  test.serial('ephemeral: lxc launch -e and tslxc launch -e are deleted by their stop', async (t) => {
    await lxc(t, ['launch', 'busybox', 'e1', '-e']);
    t.is(listed('e1').ephemeral, true);
    t.is(listed('e1').status, 'Running');
    await lxc(t, ['stop', 'e1', '--force']);
    t.falsy(listed('e1'), 'deleted by its stop (API)');
    env.ok(t, ['launch', '-e', 'busybox', 'e2']);
    t.is(listed('e2').ephemeral, true);
    env.ok(t, ['stop', '--force', 'e2']);
    t.falsy(listed('e2'), 'deleted by its stop (CLI)');
    // `lxc delete -f` stops it first, which deletes it: the client waits for that.
    await lxc(t, ['launch', 'busybox', 'e4', '--ephemeral']);
    await lxc(t, ['delete', '-f', 'e4']);
    t.falsy(listed('e4'));
    // Stopped by itself: the server's housekeeping deletes it.
    env.ok(t, ['launch', '-e', 'busybox', 'e3']);
    env.cli(['exec', 'e3', '--', 'kill', '-USR2', '1']);
    t.true(await until(() => !listed('e3')), 'an ephemeral instance that stopped by itself is deleted');
    // A PATCH makes one ephemeral, a PUT without the flag makes it not.
    const { op } = await waited('PATCH', '/1.0/instances/d1', { ephemeral: true });
    t.is(op.status_code, 200, op.err);
    t.regex(env.ok(t, ['config', 'show', 'd1']), /^ephemeral: true$/m);
    const got = (await suite.server.request('GET', '/1.0/instances/d1')).json!.metadata;
    t.is(got.ephemeral, true);
    t.is((await waited('PUT', '/1.0/instances/d1', { ...got, ephemeral: false })).op.status_code, 200);
    t.is(listed('d1').ephemeral, false);
  });

  test.serial('bulk state change: PUT /1.0/instances on every instance, and on a filter', async (t) => {
    env.ok(t, ['create', 'busybox', 'b1']);
    env.ok(t, ['create', 'busybox', 'b2']);
    const start = await waited('PUT', '/1.0/instances', { state: { action: 'start', timeout: -1 } });
    t.is(start.reply.status, 202);
    t.is(start.op.status_code, 200, start.op.err);
    for (const n of ['b1', 'b2', 'd1']) t.is(listed(n).status, 'Running', n);
    const freeze = await waited('PUT', '/1.0/instances?filter=name+eq+b1', { state: { action: 'freeze' } });
    t.is(freeze.op.status_code, 200, freeze.op.err);
    t.is(listed('b1').status, 'Frozen');
    t.is(listed('b2').status, 'Running');
    const stop = await waited('PUT', '/1.0/instances', { state: { action: 'stop', force: true } });
    t.is(stop.op.status_code, 200, stop.op.err);
    for (const n of ['b1', 'b2', 'd1']) t.is(listed(n).status, 'Stopped', n);
    t.is((await suite.server.request('PUT', '/1.0/instances', { state: { action: 'explode' } })).status, 400);
    t.is((await suite.server.request('PUT', '/1.0/instances', { state: 'start' })).status, 400);
    // The 5.0 client's --all goes through it when the server lists the extension.
    await lxc(t, ['start', '--all']);
    t.is(listed('b2').status, 'Running');
    await lxc(t, ['stop', '--all', '--force']);
    t.is(listed('b2').status, 'Stopped');
    env.ok(t, ['delete', 'b1']);
    env.ok(t, ['delete', 'b2']);
  });

  test.serial('snapshot expiry: expires_at at creation and by PUT, snapshots.expiry, pruning', async (t) => {
    // From the instance's snapshots.expiry unless the request says.
    await lxc(t, ['config', 'set', 'd1', 'snapshots.expiry', '2d']);
    await lxc(t, ['snapshot', 'd1', 'x1']);
    const x1 = (await suite.server.request('GET', '/1.0/instances/d1/snapshots/x1')).json!.metadata;
    const days = (Date.parse(x1.expires_at) - Date.now()) / 86_400_000;
    t.true(days > 1.9 && days <= 2, x1.expires_at);
    await lxc(t, ['snapshot', 'd1', 'x2', '--no-expiry']);
    t.is((await suite.server.request('GET', '/1.0/instances/d1/snapshots/x2')).json!.metadata.expires_at, '0001-01-01T00:00:00Z');
    const bad = await suite.server.lxc(['config', 'set', 'd1', 'snapshots.expiry', 'soon'], { conf: suite.conf });
    t.not(bad.code, 0);
    t.regex(bad.stderr, /snapshots\.expiry/);
    // PUT with If-Match sets it; a PATCH without it changes nothing.
    const got = await suite.server.request('GET', '/1.0/instances/d1/snapshots/x2');
    const soon = new Date(Date.now() + 1500).toISOString();
    const stale = await suite.server.request('PUT', '/1.0/instances/d1/snapshots/x2', { expires_at: soon }, { 'If-Match': 'nope' });
    t.is(stale.status, 412);
    const put = await waited('PUT', '/1.0/instances/d1/snapshots/x2', { expires_at: soon }, { 'If-Match': String(got.headers.etag) });
    t.is(put.op.status_code, 200, put.op.err);
    t.is(Date.parse((await suite.server.request('GET', '/1.0/instances/d1/snapshots/x2')).json!.metadata.expires_at), Date.parse(soon));
    t.is((await suite.server.request('PATCH', '/1.0/instances/d1/snapshots/x2', {})).status, 200);
    t.regex(await lxc(t, ['info', 'd1']), /x1 .*\| +\d{4}\/\d\d\/\d\d/, 'lxc info shows the expiry');
    t.is((await suite.server.request('PUT', '/1.0/instances/d1/snapshots/x2', { expires_at: 'tomorrow' })).status, 400);
    // The server's housekeeping deletes it once it expired.
    t.true(await until(async () => (await suite.server.request('GET', '/1.0/instances/d1/snapshots/x2')).status === 404), 'pruned by the server');
    // Creation with a time in the past, then the CLI's snapshot commands prune it themselves.
    await suite.server.stop();
    const created = env.ok(t, ['snapshot', 'create', 'd1', 'x3', '--expiry', '1M']);
    t.regex(created, /x3 created/);
    t.regex(env.ok(t, ['snapshot', 'list', 'd1', '--format', 'csv']), /x3,.*,20\d\d-/);
    const file = path.join(env.paths.stateDir, 'containers', 'd1', 'snapshots', 'x3', 'snapshot.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/expires_at: .*/, `expires_at: '${new Date(Date.now() - 1000).toISOString()}'`));
    const list = env.cli(['snapshot', 'list', 'd1']);
    t.is(list.code, 0, list.stderr);
    t.regex(list.stderr, /d1\/x3 expired: deleted/);
    t.notRegex(list.stdout, /x3/);
    t.not(env.cli(['snapshot', 'create', 'd1', 'x4', '--expiry', 'later']).code, 0);
    suite.server = await ApiServer.start(env);
    env.ok(t, ['config', 'unset', 'd1', 'snapshots.expiry']);
    for (const s of ['x1', 'x2']) env.cli(['snapshot', 'delete', 'd1', s]);
  });

  test.serial('restore of a running instance: one locked operation (lxc restore, and a start racing it)', async (t) => {
    env.ok(t, ['config', 'set', 'd1', 'user.v', 'snap']);
    env.ok(t, ['snapshot', 'create', 'd1', 'r0']);
    env.ok(t, ['config', 'set', 'd1', 'user.v', 'later']);
    env.ok(t, ['start', 'd1']);
    await lxc(t, ['restore', 'd1', 'r0']);
    t.is(listed('d1').status, 'Running', 'started again after the restore');
    t.is(listed('d1').config['user.v'], 'snap');
    env.ok(t, ['config', 'set', 'd1', 'user.v', 'later']);
    // A start and a delete while the restore holds the lock wait for it: none of them can slip in
    // between its stop and its start.
    const reply = await suite.server.request('PUT', '/1.0/instances/d1', { restore: 'r0' });
    t.is(reply.status, 202);
    t.true(await until(() => lockHeld(locksDir(env.paths), 'ct-d1'), 10_000), 'the restore holds the lock');
    const racers = [env.cliAsync(['start', 'd1']), env.cliAsync(['snapshot', 'restore', 'd1', 'r0']), env.cliAsync(['delete', 'd1'])];
    const op = (await suite.server.request('GET', `${reply.json!.operation}/wait?timeout=60`)).json!.metadata;
    t.is(op.status_code, 200, op.err);
    const [start, restore, del0] = await Promise.all(racers);
    t.not(del0.code, 0, 'a delete without --force waits, then finds it running');
    t.regex(del0.stderr, /running/);
    t.true(start.code === 0 || /already running/i.test(start.stderr), start.stderr);
    t.is(restore.code, 0, `the CLI restores a running instance too: ${restore.stderr}`);
    t.is(listed('d1').status, 'Running');
    t.is(listed('d1').config['user.v'], 'snap');
    const del = await suite.server.request('DELETE', '/1.0/instances/d1');
    t.is(del.status, 400, 'a running instance is not deleted');
  });

  test.serial('exec record-output: outputs in log files, their URLs in the operation; GET and DELETE', async (t) => {
    const { reply, op } = await waited('POST', '/1.0/instances/d1/exec', {
      command: ['sh', '-c', 'echo out; echo err >&2; exit 3'],
      'record-output': true,
      'wait-for-websocket': false,
      interactive: false,
      environment: {},
    });
    t.is(reply.status, 202);
    t.is(op.status_code, 200, op.err);
    t.is(op.metadata.return, 3);
    const out = op.metadata.output;
    t.deepEqual(Object.keys(out).sort(), ['1', '2']);
    t.regex(out['1'], /^\/1\.0\/instances\/d1\/logs\/exec_[0-9a-f-]+\.stdout$/);
    t.is((await suite.server.request('GET', out['1'])).body, 'out\n');
    t.is((await suite.server.request('GET', out['2'])).body, 'err\n');
    const logs = (await suite.server.request('GET', '/1.0/instances/d1/logs')).json!.metadata;
    t.true(logs.includes(out['1']) && logs.includes(out['2']), JSON.stringify(logs));
    t.is((await suite.server.request('DELETE', out['1'])).status, 200);
    t.is((await suite.server.request('GET', out['1'])).status, 404);
    t.is((await suite.server.request('GET', '/1.0/instances/d1/logs/..%2Fconfig.yaml')).status, 404);
    t.is((await suite.server.request('GET', '/1.0/instances/d1/logs/lxc.log')).status, 404);
    const ext = (await suite.server.request('GET', '/1.0')).json!.metadata.api_extensions as string[];
    for (const e of ['container_exec_recording', 'instance_bulk_state_change', 'snapshot_expiry', 'snapshot_expiry_creation']) t.true(ext.includes(e), e);
    const console = await suite.server.request('GET', '/1.0/instances/d1/console');
    t.is(console.status, 200);
  });

  test.serial('cleanup', async (t) => {
    env.ok(t, ['delete', '--force', 'd1']);
    t.deepEqual((await suite.server.request('GET', '/1.0/instances')).json!.metadata, []);
  });
}
