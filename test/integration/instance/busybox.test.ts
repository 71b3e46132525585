import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { tslxcStatus, type Listed } from '../../helpers/instances.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { assertContainerGone, processesOf } from '../../helpers/leftovers.js';

/** Real busybox containers: lifecycle, isolation, exec, failures, crashes. */
if (requireRoot(test)) {
  const env = new TestEnv('bb');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  const state = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name);
  const initPid = (name: string) => (state(name)?.state.pid || undefined) as number | undefined;

  test.serial('launch boots busybox init as PID 1 in its own namespaces', (t) => {
    env.ok(t, ['launch', 'busybox', 'iso1']);
    const st = state('iso1');
    t.is(st.status, 'Running');
    t.true(st.state.pid > 1);
    t.is(env.ok(t, ['exec', 'iso1', '--', 'readlink', '/proc/1/exe']).trim(), '/bin/busybox');
    t.is(env.ok(t, ['exec', 'iso1', '--', 'cat', '/proc/1/comm']).trim(), 'init');
    t.is(env.ok(t, ['exec', 'iso1', '--', 'hostname']).trim(), 'iso1');
    t.is(fs.readFileSync(`${env.paths.stateDir}/containers/iso1/rootfs/etc/hostname`, 'utf8'), 'iso1\n');
    // Every namespace differs from the host's.
    for (const ns of ['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup']) {
      const inside = env.ok(t, ['exec', 'iso1', '--', 'readlink', `/proc/self/ns/${ns}`]).trim();
      t.not(inside, fs.readlinkSync(`/proc/self/ns/${ns}`), `${ns} namespace`);
    }
    // Only its own processes: init, the shell on the console, and the exec'd ps.
    const pids = env.ok(t, ['exec', 'iso1', '--', 'sh', '-c', 'ls /proc | grep -c "^[0-9]"']).trim();
    t.true(Number(pids) < 10, `container sees ${pids} processes`);
    // None of the host's mounts: no /work, no host root device.
    const mounts = env.ok(t, ['exec', 'iso1', '--', 'cat', '/proc/self/mounts']);
    t.false(mounts.includes(env.root), 'the host path of the rootfs is not visible');
    t.regex(mounts, /^proc \/proc proc/m);
    t.regex(mounts, /sysfs \/sys sysfs ro/);
    // /sys is read-only, the masked kernel files are hidden.
    t.not(env.cli(['exec', 'iso1', '--', 'sh', '-c', 'echo 1 > /sys/kernel/uevent_helper']).code, 0);
    t.is(env.cli(['exec', 'iso1', '--', 'sh', '-c', '[ ! -e /proc/kcore ] || [ "$(wc -c < /proc/kcore)" = 0 ]']).code, 0);
  });

  test.serial('exec passes exit codes, stdin, env, cwd and user through', (t) => {
    t.is(env.cli(['exec', 'iso1', '--', 'sh', '-c', 'exit 7']).code, 7);
    t.is(env.cli(['exec', 'iso1', '--', 'false']).code, 1);
    t.is(env.cli(['exec', 'iso1', '--', 'cat'], { input: 'hello from stdin\n' }).stdout, 'hello from stdin\n');
    t.is(env.ok(t, ['exec', 'iso1', '--env', 'FOO=bar baz', '--', 'sh', '-c', 'echo "$FOO"']).trim(), 'bar baz');
    t.is(env.ok(t, ['exec', 'iso1', '--cwd', '/etc', '--', 'pwd']).trim(), '/etc');
    t.is(env.ok(t, ['exec', 'iso1', '--user', 'user', '--', 'id', '-u']).trim(), '1000');
    const missing = env.cli(['exec', 'iso1', '--', '/no/such/cmd']);
    t.not(missing.code, 0);
  });

  test.serial('file push and pull stay inside the container', (t) => {
    const victim = `${env.root}/host-victim`;
    fs.writeFileSync(victim, 'host data\n');
    const src = `${env.root}/src.txt`;
    fs.writeFileSync(src, 'pushed\n');
    env.ok(t, ['file', 'push', src, 'iso1/tmp/a.txt']);
    t.is(env.ok(t, ['exec', 'iso1', '--', 'cat', '/tmp/a.txt']), 'pushed\n');
    // A symlink inside the container pointing at a host path must resolve inside the container.
    env.ok(t, ['exec', 'iso1', '--', 'ln', '-s', victim, '/tmp/link']);
    env.cli(['file', 'push', src, 'iso1/tmp/link']);
    t.is(fs.readFileSync(victim, 'utf8'), 'host data\n');
    const out = `${env.root}/pulled.txt`;
    env.ok(t, ['file', 'pull', 'iso1/tmp/a.txt', out]);
    t.is(fs.readFileSync(out, 'utf8'), 'pushed\n');
    const pulled = env.cli(['file', 'pull', 'iso1/tmp/link', `${env.root}/pulled2.txt`]);
    if (pulled.code === 0) t.not(fs.readFileSync(`${env.root}/pulled2.txt`, 'utf8'), 'host data\n');
  });

  test.serial('the console socket reaches the shell on the console, and the log keeps it', async (t) => {
    const net = await import('node:net');
    const sock = net.connect(`${env.paths.runDir}/containers/iso1/console.sock`);
    let seen = '';
    sock.on('data', (d) => (seen += d.toString()));
    await new Promise((r) => sock.on('connect', r));
    sock.write('echo console-$((6*7))\n');
    const deadline = Date.now() + 5000;
    while (!seen.includes('console-42') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    t.true(seen.includes('console-42'), `console said: ${JSON.stringify(seen.slice(-200))}`);
    t.true(env.ok(t, ['console', 'iso1', '--show-log']).includes('console-42'));
  });

  test.serial('pause freezes, resume thaws', (t) => {
    env.ok(t, ['pause', 'iso1']);
    t.is(state('iso1').status, 'Frozen');
    const r = env.cli(['exec', 'iso1', '--', 'true']);
    t.is(r.code, 1);
    t.regex(r.stderr, /paused/);
    env.ok(t, ['resume', 'iso1']);
    t.is(state('iso1').status, 'Running');
    t.is(env.cli(['exec', 'iso1', '--', 'true']).code, 0);
  });

  test.serial('reboot inside restarts the container with a new init', async (t) => {
    const before = initPid('iso1');
    env.cli(['exec', 'iso1', '--', 'reboot']);
    const deadline = Date.now() + 20_000;
    let after: number | undefined;
    while (Date.now() < deadline) {
      after = initPid('iso1');
      if (after && after !== before && state('iso1').status === 'Running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.truthy(after);
    t.not(after, before);
    t.is(env.ok(t, ['exec', 'iso1', '--', 'hostname']).trim(), 'iso1');
  });

  test.serial('stop, start, restart, and delete --force of a running container', (t) => {
    env.ok(t, ['stop', 'iso1']);
    t.is(state('iso1').status, 'Stopped');
    assertContainerGone(t, env, 'iso1');
    t.regex(env.cli(['stop', 'iso1']).stderr, /not running/);
    env.ok(t, ['start', 'iso1']);
    const p1 = initPid('iso1');
    env.ok(t, ['restart', 'iso1']);
    t.not(initPid('iso1'), p1);
    t.is(state('iso1').status, 'Running');
    const del = env.cli(['delete', 'iso1']);
    t.is(del.code, 1);
    t.regex(del.stderr, /is running/);
    env.ok(t, ['delete', '--force', 'iso1']);
    t.is(state('iso1'), undefined);
    assertContainerGone(t, env, 'iso1');
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/iso1`));
  });

  test.serial('bad names, duplicates and missing images get one clear line', (t) => {
    for (const bad of ['Bad', 'x-', 'a_b', '../../etc', 'x'.repeat(64)]) {
      const r = env.cli(['create', 'busybox', bad]);
      t.is(r.code, 1, bad);
      t.is(r.stderr.trim().split('\n').length, 1, bad);
      t.regex(r.stderr, /Invalid container name/);
    }
    const missing = env.cli(['launch', 'no-such-image', 'c1']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /Image "no-such-image" not found/);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/c1`));
    env.ok(t, ['create', 'busybox', 'dup']);
    t.regex(env.cli(['create', 'busybox', 'dup']).stderr, /already exists/);
    t.is(tslxcStatus(state('dup')), 'Created');
    env.ok(t, ['rename', 'dup', 'dup2']);
    t.is(fs.readFileSync(`${env.paths.stateDir}/containers/dup2/rootfs/etc/hostname`, 'utf8'), 'dup2\n');
    env.ok(t, ['delete', 'dup2']);
  });

  test.serial('a failed start leaves nothing behind', (t) => {
    env.ok(t, ['create', 'busybox', 'broken', '--init', '/no/such/init']);
    const r = env.cli(['start', 'broken']);
    t.is(r.code, 1);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, /Cannot start "broken"/);
    assertContainerGone(t, env, 'broken');
    t.deepEqual(processesOf(env), []);
    env.ok(t, ['delete', 'broken']);
  });

  test.serial('a SIGKILLed monitor shows as Error and stop cleans up', (t) => {
    env.ok(t, ['launch', 'busybox', 'mon1']);
    const st = state('mon1');
    t.is(st.status, 'Running');
    process.kill(Number(fs.readFileSync(`${env.paths.runDir}/containers/mon1/monitor.pid`, 'utf8').split(' ')[0]), 'SIGKILL');
    const after = state('mon1');
    t.is(after.status, 'Error');
    t.regex(env.ok(t, ['info', 'mon1']), /^Status: ERROR \(.*monitor/m);
    env.ok(t, ['stop', '--timeout', '5', 'mon1']);
    t.is(state('mon1').status, 'Stopped');
    assertContainerGone(t, env, 'mon1');
    env.ok(t, ['delete', 'mon1']);
  });

  test.serial('a SIGKILLed launch leaves a state that list reports and delete cleans', async (t) => {
    for (const delay of [20, 120, 250, 400]) {
      const name = `kill${delay}`;
      const { spawn } = await import('node:child_process');
      const { cliPath } = await import('../../helpers/env.js');
      const child = spawn(process.execPath, [cliPath, 'launch', 'busybox', name], { env: env.env, stdio: 'ignore' });
      const closed = new Promise((r) => child.on('close', r));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await closed;
      const list = env.cli(['list', '--format', 'json']);
      t.is(list.code, 0);
      const st = JSON.parse(list.stdout).find((c: { name: string }) => c.name === name);
      if (st) {
        t.true(['Running', 'Error', 'Stopped'].includes(st.status), `${name}: ${st.status}`);
        env.ok(t, ['delete', '--force', name]);
      }
      assertContainerGone(t, env, name);
      t.false(fs.existsSync(`${env.paths.stateDir}/containers/${name}`));
    }
  });

  test.serial('20 busybox containers launched in parallel all run', async (t) => {
    const names = Array.from({ length: 20 }, (_, i) => `par${i}`);
    const results = await Promise.all(names.map((n) => env.cliAsync(['launch', 'busybox', n])));
    for (const [i, r] of results.entries()) t.is(r.code, 0, `${names[i]}: ${r.stderr}`);
    const list = JSON.parse(env.ok(t, ['list', '--format', 'json']));
    for (const n of names) t.is(list.find((c: { name: string }) => c.name === n)?.status, 'Running', n);
    const pids = new Set(list.filter((c: { name: string }) => c.name.startsWith('par')).map((c: Listed) => c.state.pid));
    t.is(pids.size, 20);
    const del = await Promise.all(names.map((n) => env.cliAsync(['delete', '--force', n])));
    for (const r of del) t.is(r.code, 0, r.stderr);
    for (const n of names) assertContainerGone(t, env, n);
  });
}
