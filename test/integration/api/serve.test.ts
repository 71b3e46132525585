import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { ApiServer } from '../../helpers/api.js';

/**
 * `tslxc serve` as users run it (the built launcher): the socket's mode and group, one server per
 * state, SIGTERM, SIGKILL with a container running (it keeps running; the next start replaces the
 * stale socket), pylxd, and the audit log.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apiserve');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

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
}
