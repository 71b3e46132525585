import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { WebSocket } from 'ws';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite } from '../../helpers/api.js';

/**
 * `tslxc serve` through bin/tslxc runs under the native front (native/servefront.c,
 * lib/api/front.ts): after --idle-timeout unused, the node worker ends and the front holds the
 * sockets and the lock; the next connection waits in the backlog and is served by a new worker.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether PID runs (a zombie does not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The fds of PID past stdio that its children would inherit (no close-on-exec): sockets and serve.lock. */
function inheritable(pid: number): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    if (Number(fd) < 3) continue;
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      const flags = parseInt(/^flags:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      if ((target.startsWith('socket:') || target.endsWith('serve.lock')) && !(flags & 0o2000000)) out.push(`${fd} -> ${target}`);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const idleWorker = (server: ApiServer) => until('the worker to end', () => server.workerPids().length === 0);

if (requireRoot(test)) {
  const suite = apiSuite(test, 'api-idle', { images: ['busybox'], containers: [{ name: 'c1' }], serve: false });
  const env = suite.env;
  const lockFile = () => path.join(env.paths.stateDir, 'serve.lock');

  test.serial('idle: the worker ends, the front answers the next client on both sockets with the same answers', async (t) => {
    const server = await ApiServer.start(env, ['--idle-timeout', '1s', '--listen', '127.0.0.1:0']);
    try {
      t.true(fs.readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').includes('serve-front'), 'bin/tslxc starts the front');
      const token = env.ok(t, ['config', 'trust', 'add', 'idler']).trim().split('\n').pop()!;
      const conf = server.lxcConf();
      t.is((await server.lxc(['remote', 'add', 'srv', token], { conf })).code, 0);
      const warm = await server.request('GET', '/1.0/instances?recursion=1');
      const warmTls = await server.lxc(['list', 'srv:', '--format', 'csv', '-c', 'ns'], { conf });
      t.is(warmTls.stdout.trim(), 'c1,RUNNING', warmTls.stderr);
      const first = server.workerPid!;
      t.deepEqual(inheritable(first), [], "the first worker's control socket is close-on-exec");
      await idleWorker(server);
      t.false(alive(first));
      t.true(fs.existsSync(server.socket), 'the socket stays');
      t.true(fs.existsSync(lockFile()), 'the lock stays');
      const cold = await server.request('GET', '/1.0/instances?recursion=1');
      t.is(cold.status, 200);
      t.deepEqual(
        cold.json?.metadata.map((i: { name: string; status: string }) => [i.name, i.status]),
        warm.json?.metadata.map((i: { name: string; status: string }) => [i.name, i.status]),
      );
      const second = server.workerPid;
      t.truthy(second, 'a worker started for the request');
      t.not(second, first);
      t.deepEqual(inheritable(second!), [], 'the inherited lock, sockets and control socket are close-on-exec');
      await idleWorker(server);
      const coldTls = await server.lxc(['list', 'srv:', '--format', 'csv', '-c', 'ns'], { conf });
      t.is(coldTls.code, 0, coldTls.stderr);
      t.is(coldTls.stdout, warmTls.stdout);
      const exec = await server.lxc(['exec', 'srv:c1', '--', 'echo', 'hi'], { conf });
      t.is(exec.stdout, 'hi\n', exec.stderr);
      t.true(alive(server.pid));
      t.is(await server.stop(), 0);
      t.false(fs.existsSync(server.socket));
      t.false(fs.existsSync(lockFile()));
    } finally {
      await server.kill();
    }
  });

  test.serial('connections arriving around the hand-over are all served; a second serve is refused while no worker runs', async (t) => {
    const server = await ApiServer.start(env, ['--idle-timeout', '300ms']);
    try {
      // The worker checks every 100 ms: delays across its 300 ms land before, at and after it ends.
      for (let i = 0; i < 24; i++) {
        await sleep(250 + (i % 8) * 25);
        const r = await server.request('GET', '/1.0', undefined, {}, { fresh: true });
        t.is(r.status, 200, `request ${i}`);
      }
      await idleWorker(server);
      const second = env.cli(['serve']);
      t.not(second.code, 0);
      t.regex(second.stderr, /Another tslxc serve is running on .*: it holds serve\.lock/);
      t.is((await server.request('GET', '/1.0')).status, 200, 'the refused one took nothing');
    } finally {
      await server.stop();
    }
  });

  test.serial('SIGTERM with and without a worker; SIGKILL of the front leaves nothing, the next serve starts clean', async (t) => {
    let server = await ApiServer.start(env, ['--idle-timeout', '1s']);
    await idleWorker(server);
    t.is(await server.stop(), 0);
    t.regex(server.log, /SIGTERM: closing/);
    t.false(fs.existsSync(server.socket));
    t.false(fs.existsSync(lockFile()));

    server = await ApiServer.start(env, ['--idle-timeout', '1m']);
    const worker = server.workerPid!;
    t.is(await server.stop(), 0);
    t.false(alive(worker));
    t.false(fs.existsSync(server.socket));

    server = await ApiServer.start(env, ['--idle-timeout', '1m']);
    const killed = server.workerPid!;
    await server.kill();
    await until('the worker to die with its front', () => !alive(killed), 5000);
    server = await ApiServer.start(env, ['--idle-timeout', '1s']);
    await idleWorker(server);
    await server.kill();
    server = await ApiServer.start(env);
    t.is((await server.request('GET', '/1.0/instances')).status, 200);
    t.is(await server.stop(), 0);
  });

  test.serial('a killed worker: the next connection starts another', async (t) => {
    const server = await ApiServer.start(env, ['--idle-timeout', '1m']);
    try {
      const worker = server.workerPid!;
      process.kill(worker, 'SIGKILL');
      await until('the worker to die', () => !alive(worker));
      // A new connection: the one kept alive from the start died with the worker, as in any crash.
      const r = await server.request('GET', '/1.0/instances', undefined, {}, { fresh: true });
      t.is(r.status, 200);
      t.not(server.workerPid, worker);
      t.regex(server.log, new RegExp(`worker ${worker} ended \\(signal 9\\); another starts at the next connection`));
    } finally {
      await server.stop();
    }
  });

  test.serial('a retired server wakes for its housekeeping: an expired snapshot is deleted with no client', async (t) => {
    env.ok(t, ['snapshot', 'create', 'c1', 'w1', '--expiry', '1M']);
    const file = path.join(env.paths.stateDir, 'containers', 'c1', 'snapshots', 'w1', 'snapshot.yaml');
    const expiry = Date.now() + 6000;
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/expires_at: .*/, `expires_at: '${new Date(expiry).toISOString()}'`));
    const server = await ApiServer.start(env, ['--idle-timeout', '1s'], { env: { TSLXC_API_HOUSEKEEPING_MS: '1000' } });
    try {
      await idleWorker(server);
      t.true(fs.existsSync(file), 'not expired yet');
      await until('the snapshot to be deleted by a woken worker', () => !fs.existsSync(file), 30_000);
      t.true(Date.now() >= expiry);
      // Woken workers retire once their chores are done; with nothing left to expire, the next wake is far.
      await idleWorker(server);
      t.true((server.log.match(/listening on/g) ?? []).length >= 2, 'a worker was started with no client');
    } finally {
      await server.stop();
    }
  });

  test.serial('an events listener, a running exec and a kept operation keep the worker up', async (t) => {
    const server = await ApiServer.start(env, ['--idle-timeout', '1s']);
    try {
      const listener = new WebSocket(`ws+unix://${server.socket}:/1.0/events`);
      await new Promise((resolve, reject) => listener.once('open', resolve).once('error', reject));
      const worker = server.workerPid!;
      await sleep(2500);
      t.is(server.workerPid, worker, 'up while an events listener is open');
      listener.close();
      await idleWorker(server);

      const conf = server.lxcConf();
      const exec = server.lxc(['exec', 'c1', '--', 'sleep', '3'], { conf });
      await sleep(2500);
      const execWorker = server.workerPid;
      t.truthy(execWorker, 'up while an exec runs');
      t.is((await exec).code, 0);
      await sleep(2000);
      t.is(server.workerPid, execWorker, 'up while the ended operation is kept for pollers');
    } finally {
      await server.stop();
    }
  });
}
