import fs from 'node:fs';
import test from 'ava';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite } from '../../helpers/api.js';
import { routes } from '../../../lib/api/routes/index.js';

/**
 * `tslxc serve` as users run it (the built launcher): the socket's mode and group, one server per
 * state, SIGTERM, SIGKILL with a container running (it keeps running; the next start replaces the
 * stale socket), pylxd, and the audit log.
 */
if (requireRoot(test)) {
  const { env } = apiSuite(test, 'apiserve', { images: ['busybox'], serve: false });

  test.serial('the socket is 0660, owned by root and the --group given', async (t) => {
    const server = await ApiServer.start(env, ['--group', 'daemon']);
    try {
      const st = fs.statSync(server.socket);
      t.true(st.isSocket());
      t.is(st.mode & 0o777, 0o660);
      t.is(st.uid, 0);
      const daemonGid = Number(
        fs
          .readFileSync('/etc/group', 'utf8')
          .split('\n')
          .find((l) => l.startsWith('daemon:'))!
          .split(':')[2],
      );
      t.is(st.gid, daemonGid);
    } finally {
      t.is(await server.stop(), 0);
    }
    t.false(fs.existsSync(server.socket), 'SIGTERM removes the socket');
  });

  test.serial('a second server on the same state refuses to start, with one line', async (t) => {
    const server = await ApiServer.start(env);
    try {
      const r = await env.cliAsync(['serve']);
      t.is(r.code, 1);
      t.is(r.stderr.trim().split('\n').length, 1);
      t.regex(r.stderr, /Another tslxc serve is running/);
      t.is((await server.request('GET', '/1.0')).status, 200, 'the first one still answers');
    } finally {
      await server.stop();
    }
  });

  test.serial('an unknown --group is one clear line', async (t) => {
    const r = await env.cliAsync(['serve', '--group', 'no-such-group-x']);
    t.is(r.code, 1);
    t.regex(r.stderr, /^Error: No group "no-such-group-x"/);
  });

  test.serial('pylxd connects through LXD_DIR and is trusted', async (t) => {
    const server = await ApiServer.start(env);
    try {
      const r = await server.pylxd(
        'import pylxd\nc = pylxd.Client()\nprint(c.trusted, c.host_info["api_version"], c.host_info["environment"]["server_name"] != "")',
      );
      t.is(r.code, 0, r.stderr);
      t.is(r.stdout.trim(), 'True 1.0 True');
    } finally {
      await server.stop();
    }
  });

  test.serial('changes through the API are in the audit log', async (t) => {
    const server = await ApiServer.start(env);
    try {
      t.is((await server.request('PUT', '/1.0', { config: {} })).status, 200);
      t.is((await server.request('DELETE', '/1.0/operations/nope')).status, 404);
    } finally {
      await server.stop();
    }
    const log = fs.readFileSync(`${env.paths.stateDir}/logs/api-audit.log`, 'utf8').trim().split('\n');
    t.regex(log.at(-2)!, /^\S+Z unix PUT \/1\.0 200$/);
    t.regex(log.at(-1)!, /^\S+Z unix DELETE \/1\.0\/operations\/nope 404$/);
  });

  test.serial('SIGKILL: the container keeps running, the next start is clean', async (t) => {
    env.ok(t, ['launch', 'busybox', 'k1']);
    const server = await ApiServer.start(env);
    await server.kill();
    t.true(fs.existsSync(server.socket), 'a killed server leaves its socket');
    t.is(env.cli(['exec', 'k1', '--', 'true']).code, 0, 'the container still runs');
    const next = await ApiServer.start(env);
    try {
      t.is((await next.request('GET', '/1.0')).json?.metadata.auth, 'trusted');
      const r = await next.lxc(['info']);
      t.is(r.code, 0, r.stderr);
    } finally {
      t.is(await next.stop(), 0);
    }
    t.is(env.cli(['exec', 'k1', '--', 'true']).code, 0);
    env.ok(t, ['delete', '-f', 'k1']);
  });

  /** The kill tests below need the instance and exec routes (lib/api/routes/); without them they say so. */
  const hasRoute = (method: string, path: string) => routes.some((r) => r.method === method && r.path === path);

  test.serial('SIGKILL mid-exec: the container keeps running, the next server execs again', async (t) => {
    if (!hasRoute('POST', '/1.0/instances/{name}/exec')) return t.pass('no exec route in this build');
    env.ok(t, ['launch', 'busybox', 'k2']);
    const server = await ApiServer.start(env);
    const conf = server.lxcConf();
    const running = server.lxc(['exec', 'k2', '--', 'sleep', '20'], { conf });
    await new Promise((r) => setTimeout(r, 1500));
    await server.kill();
    t.not((await running).code, 0, 'the client sees the server go');
    t.is(env.cli(['exec', 'k2', '--', 'true']).code, 0, 'the container still runs');
    const next = await ApiServer.start(env);
    try {
      const r = await next.lxc(['exec', 'k2', '--', 'echo', 'again'], { conf });
      t.is(r.code, 0, r.stderr);
      t.is(r.stdout.trim(), 'again');
    } finally {
      await next.stop();
    }
    env.ok(t, ['delete', '-f', 'k2']);
  });

  // A server killed at each step of a create (the library's crash points: deterministic, where a
  // kill from outside once the dir appeared raced with the config's write). The next server lists
  // what was left as an Error that `lxc delete` and `tslxc delete` remove completely, or not at all.
  const createSteps = ['create:locked', 'create:dir-made', 'create:root-made', 'create:configured'];
  for (const [i, step] of createSteps.entries()) {
    test.serial(`SIGKILL mid-launch at ${step}: nothing half-made stays, the next server is clean`, async (t) => {
      if (!hasRoute('POST', '/1.0/instances')) return t.pass('no instance routes in this build');
      const dir = `${env.paths.stateDir}/containers/k3`;
      const server = await ApiServer.start(env, [], { env: { TSLXC_TEST_CRASH_AT: step } });
      const launched = await server.lxc(['launch', 'busybox', 'k3']);
      t.not(launched.code, 0, 'the server died under the launch');
      t.true(await server.crashed(), 'killed at the crash point');
      const next = await ApiServer.start(env);
      try {
        const list = await next.request('GET', '/1.0/instances?recursion=1');
        t.is(list.status, 200);
        const k3 = (list.json?.metadata as Array<{ name: string; status: string }>).find((i) => i.name === 'k3');
        t.is(Boolean(k3), fs.existsSync(dir), 'listed exactly when its dir is there');
        if (k3) {
          // What the list shows, a read finds: an Error (its create was interrupted), deleted whole.
          t.is(k3.status, 'Error');
          const one = await next.request('GET', '/1.0/instances/k3');
          t.is(one.status, 200, one.body);
          t.is(one.json?.metadata?.status, 'Error');
          t.is((await next.request('GET', '/1.0/instances/k3/state')).status, 200);
          t.is((await next.request('POST', '/1.0/instances', { name: 'k3', source: { type: 'image', alias: 'busybox' } })).status, 409, 'the name is taken');
          const listed = JSON.parse(env.ok(t, ['list', '--format', 'json'])) as Array<{ name: string; status: string }>;
          t.is(listed.find((c) => c.name === 'k3')?.status, 'Error', 'tslxc list agrees');
          if (i % 2 === 0) {
            const del = await next.lxc(['delete', '-f', 'k3']);
            t.is(del.code, 0, del.stderr);
          } else {
            env.ok(t, ['delete', 'k3']);
          }
        }
        t.false(fs.existsSync(dir));
        const left = [env.paths.stateDir, env.paths.runDir]
          .flatMap((d) => fs.readdirSync(d, { recursive: true }).map(String))
          .filter((f) => /k3/.test(f) && !f.startsWith('generations/'));
        // Its generation token stays, as after any delete: a later k3's plan must never match it.
        t.deepEqual(left, [], 'no file of k3 is left');
        t.is((await next.request('GET', '/1.0/instances/k3')).status, 404);
        t.is((await next.lxc(['launch', 'busybox', 'k3'])).code, 0, 'the name is free again');
        t.is(env.cli(['exec', 'k3', '--', 'true']).code, 0);
      } finally {
        await next.stop();
      }
      env.ok(t, ['delete', '-f', 'k3']);
    });
  }
}
