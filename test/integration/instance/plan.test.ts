import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { launcherPath, repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { ipv4Of } from '../../helpers/instances.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { hostLinks, teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { findTool } from '../../../lib/util/exec.js';

/**
 * `tslxc start` and `tslxc exec` without node (native/cli.c, native/plan.c): run through bin/tslxc
 * as users run it. To see which way a command went, PATH starts with a fake `node` that exits 99:
 * a command that needed node fails with 99, one done natively succeeds.
 */
if (requireRoot(test)) {
  const env = new TestEnv('plan');
  const fakeDir = path.join(env.root, 'fakenode');
  fs.mkdirSync(fakeDir, { recursive: true });
  fs.writeFileSync(path.join(fakeDir, 'node'), '#!/bin/sh\necho "fake node: $*" >&2\nexit 99\n', { mode: 0o755 });
  /** The CLI with node out of reach; TSLXC_PLAN_DEBUG says why a plan was not used. */
  const native = (args: string[], input?: string) => {
    const r = spawnSync(launcherPath, args, { env: { ...env.env, PATH: `${fakeDir}:${env.env.PATH}`, TSLXC_PLAN_DEBUG: '1' }, input, encoding: 'utf8' });
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  };
  const isLink = (p: string) => {
    try {
      return fs.lstatSync(p).isSymbolicLink();
    } catch {
      return false;
    }
  };
  const planFile = (name: string) => path.join(env.paths.runDir, 'plans', name);
  const memoryLimit = (name: string) => {
    const v1 = `/sys/fs/cgroup/memory/${env.paths.cgroupPrefix}/${name}/memory.limit_in_bytes`;
    return fs.readFileSync(fs.existsSync(v1) ? v1 : `/sys/fs/cgroup/${env.paths.cgroupPrefix}/${name}/memory.max`, 'utf8').trim();
  };
  const status = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name)?.status;

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  const br = uniqueBridge();
  // Before leftoverHooks' cleanup: containers first (they hold the network), then the network.
  test.serial.after.always('the test network goes', async () => {
    await env.deleteContainers();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial('a second start replays the plan: no node, the same limits, nothing left after stop', (t) => {
    env.ok(t, ['create', 'busybox', 'p1']);
    env.ok(t, ['config', 'set', 'p1', 'limits.memory=200MiB']);
    // The installation's first start makes the cgroup prefix level: host set-up done before the
    // spec is computed, not a step of it, so even that start leaves a plan.
    env.ok(t, ['start', 'p1']);
    t.true(fs.existsSync(planFile('p1')));
    env.ok(t, ['stop', 'p1']);
    env.ok(t, ['start', 'p1']);
    t.true(fs.existsSync(planFile('p1')), 'the TypeScript start wrote a plan');
    env.ok(t, ['stop', 'p1']);

    const r = native(['start', 'p1']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, '');
    t.is(status('p1'), 'Running');
    t.is(memoryLimit('p1'), String(200 * 1024 * 1024));
    t.regex(env.ok(t, ['info', 'p1']), /Running/i);
    t.false(fs.existsSync(path.join(env.paths.runDir, 'locks', 'ct-p1.lock')), 'the lock was released');
    // When it was last used is the file's mtime (the replay touched it).
    t.true(Date.now() - fs.statSync(path.join(env.paths.stateDir, 'containers', 'p1', 'last-used')).mtimeMs < 60_000);
    // Already running: node says so, and the plan is kept for the next start.
    const again = native(['start', 'p1']);
    t.is(again.code, 99);
    t.regex(again.stderr, /running, or left by a crash/);
    t.true(fs.existsSync(planFile('p1')));
    env.ok(t, ['stop', 'p1']);
    t.false(fs.existsSync(`/sys/fs/cgroup/memory/${env.paths.cgroupPrefix}/p1`), 'no cgroup left');
  });

  test.serial('a config or profile change sends the start to node, which writes a fresh plan', (t) => {
    env.ok(t, ['config', 'set', 'p1', 'limits.memory=128MiB']);
    const r = native(['start', 'p1']);
    t.is(r.code, 99);
    t.regex(r.stderr, /start plan not used: changed since: .*generations\/container\/p1/);
    env.ok(t, ['start', 'p1']);
    t.is(memoryLimit('p1'), String(128 * 1024 * 1024));
    env.ok(t, ['stop', 'p1']);
    t.is(native(['start', 'p1']).code, 0, 'the fresh plan holds');
    env.ok(t, ['stop', 'p1']);

    env.ok(t, ['profile', 'set', 'default', 'limits.processes=500']);
    const p = native(['start', 'p1']);
    t.is(p.code, 99);
    t.regex(p.stderr, /changed since: .*generations\/profile\/default/);
    env.ok(t, ['profile', 'unset', 'default', 'limits.processes']);
  });

  /** After `change`, the native start goes to node (why: `why`), node's start applies it (`applied`), and its fresh plan holds. */
  const changeApplies = (t: ExecutionContext, change: () => void, why: RegExp, applied: () => void) => {
    change();
    const r = native(['start', 'p1']);
    t.is(r.code, 99, 'the plan no longer holds');
    t.regex(r.stderr, why);
    env.ok(t, ['start', 'p1']);
    applied();
    env.ok(t, ['stop', 'p1']);
    const again = native(['start', 'p1']);
    t.is(again.code, 0, `the fresh plan holds: ${again.stderr}`);
    applied();
    env.ok(t, ['stop', 'p1']);
  };

  test.serial('a start after any change to the config, profiles, devices or pool applies it', (t) => {
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    const share = path.join(env.root, 'share');
    fs.mkdirSync(share, { recursive: true });
    fs.writeFileSync(path.join(share, 'marker'), 'shared\n');
    const sees = (file: string) => env.cli(['exec', 'p1', '--', 'cat', file]);
    env.ok(t, ['profile', 'create', 'extra']);
    env.ok(t, ['profile', 'set', 'extra', 'limits.memory=150MiB']);
    // The container's own key would win over the profile's: unset it first.
    changeApplies(
      t,
      () => env.ok(t, ['config', 'unset', 'p1', 'limits.memory']),
      /generations\/container\/p1/,
      () => t.not(memoryLimit('p1'), String(128 * 1024 * 1024)),
    );
    changeApplies(
      t,
      () => env.ok(t, ['profile', 'add', 'p1', 'extra']),
      /generations\/container\/p1/,
      () => t.is(memoryLimit('p1'), String(150 * 1024 * 1024)),
    );
    changeApplies(
      t,
      () => env.ok(t, ['profile', 'set', 'extra', 'limits.memory=160MiB']),
      /generations\/profile\/extra/,
      () => t.is(memoryLimit('p1'), String(160 * 1024 * 1024)),
    );
    changeApplies(
      t,
      () => env.ok(t, ['profile', 'device', 'add', 'extra', 'share', 'disk', `source=${share}`, 'path=/mnt/share']),
      /generations\/profile\/extra/,
      () => t.is(sees('/mnt/share/marker').stdout, 'shared\n'),
    );
    changeApplies(
      t,
      () => env.ok(t, ['profile', 'remove', 'p1', 'extra']),
      /generations\/container\/p1/,
      () => {
        t.not(sees('/mnt/share/marker').code, 0, "the profile's disk went with it");
        t.not(memoryLimit('p1'), String(160 * 1024 * 1024));
      },
    );
    changeApplies(
      t,
      () => env.ok(t, ['config', 'set', 'p1', 'limits.memory=128MiB']),
      /generations\/container\/p1/,
      () => t.is(memoryLimit('p1'), String(128 * 1024 * 1024)),
    );
    changeApplies(
      t,
      () => env.ok(t, ['storage', 'set', 'default', 'description=changed']),
      /generations\/pool\/default/,
      () => t.is(status('p1'), 'Running'),
    );
    // A profile the container does not use keeps its plan.
    env.ok(t, ['profile', 'set', 'extra', 'limits.memory=170MiB']);
    t.is(native(['start', 'p1']).code, 0, 'an unused profile changed: the plan holds');
    env.ok(t, ['stop', 'p1']);
    env.ok(t, ['profile', 'delete', 'extra']);
  });

  test.serial('another build of tslxc (the helper or the TypeScript) sends the start to node', (t) => {
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    const plan = fs.readFileSync(planFile('p1'), 'utf8');
    const ops = plan.split('\0');
    const helperId = ops[ops.indexOf('build') + 1];
    t.is(helperId, fs.readFileSync(path.join(repoRoot, 'native', 'build', 'build-id'), 'utf8'), "the plan names the helper's build");
    const distAt = ops.findIndex((op, i) => op === 'text' && ops[i + 1].endsWith('/build-id'));
    t.true(distAt > 0, 'and the TypeScript build');
    // A plan written by other builds, as after a rebuild of either: not used, and dropped.
    for (const [at, why] of [
      [ops.indexOf('build') + 1, /another build of tslxc-helper/],
      [distAt + 2, /changed: .*build-id/],
    ] as const) {
      const other = [...ops];
      other[at] = `${other[at]}x`;
      fs.writeFileSync(planFile('p1'), other.join('\0'));
      const r = native(['start', 'p1']);
      t.is(r.code, 99);
      t.regex(r.stderr, why);
      t.false(fs.existsSync(planFile('p1')));
    }
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    t.is(native(['start', 'p1']).code, 0);
    env.ok(t, ['stop', 'p1']);
  });

  test.serial('a replay that cannot finish undoes what it made; node then starts it', (t) => {
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    // A cgroup dir in the way of the plan's last mkdir: the dirs made before it must go again.
    const ops = fs.readFileSync(planFile('p1'), 'utf8').split('\0');
    const mkdirs = ops.flatMap((op, i) => (op === 'mkdir' ? [ops[i + 1]] : []));
    // The last one that can be made now (on v2 the attach leaf's parent is gone with the container).
    const at = mkdirs.map((d) => fs.existsSync(path.dirname(d))).lastIndexOf(true);
    t.true(at >= 0);
    const blocker = mkdirs[at];
    fs.mkdirSync(blocker);
    try {
      const r = native(['start', 'p1']);
      t.is(r.code, 99);
      t.regex(r.stderr, /start plan not used: cannot make/);
      for (const d of mkdirs.slice(0, at)) t.false(fs.existsSync(d), `${d} was removed`);
      t.false(fs.existsSync(path.join(env.paths.runDir, 'locks', 'ct-p1.lock')), 'no lock left');
    } finally {
      fs.rmdirSync(blocker);
    }
    env.ok(t, ['start', 'p1']);
    t.is(status('p1'), 'Running');
    env.ok(t, ['stop', 'p1']);
  });

  test.serial('a replayed start that fails leaves nothing, and node reports the failure in one line', (t) => {
    t.true(fs.existsSync(planFile('p1')));
    // Its init is no longer executable (in its own root: the upper layer on overlay, the copy on
    // dir), which the plan does not check: the start itself fails, natively and then in node.
    const init = path.join(env.paths.stateDir, 'containers', 'p1', 'rootfs', 'sbin', 'init');
    const aside = `${init}.aside`;
    const had = fs.existsSync(init) || isLink(init);
    if (had) fs.renameSync(init, aside);
    fs.mkdirSync(path.dirname(init), { recursive: true });
    fs.writeFileSync(init, 'not a program\n', { mode: 0o644 });
    try {
      const r = env.cli(['start', 'p1']);
      t.not(r.code, 0);
      t.regex(r.stderr, /Cannot start "p1"/);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.false(fs.existsSync(`/sys/fs/cgroup/memory/${env.paths.cgroupPrefix}/p1`), 'no cgroup left');
      t.false(fs.existsSync(path.join(env.paths.runDir, 'locks', 'ct-p1.lock')), 'no lock left');
      t.is(status('p1'), 'Stopped');
      t.false(fs.existsSync(planFile('p1')), 'the native replay was tried, failed, and dropped its plan');
    } finally {
      fs.rmSync(init, { force: true });
      if (had) fs.renameSync(aside, init);
    }
    env.ok(t, ['start', 'p1']);
    t.is(status('p1'), 'Running');
  });

  test.serial('exec without node: exit codes, stdin, --env, --cwd, --user; anything else goes to node', (t) => {
    t.is(native(['exec', 'p1', '--', 'sh', '-c', 'exit 7']).code, 7);
    const io = native(['exec', 'p1', '--env', 'A=b', '--cwd=/tmp', '--', 'sh', '-c', 'cat; echo "$A"; pwd'], 'hello\n');
    t.is(io.code, 0, io.stderr);
    t.is(io.stdout, 'hello\nb\n/tmp\n');
    t.is(native(['exec', 'p1', '--user', 'nobody', '--', 'id', '-u']).stdout.trim(), '65534');
    t.is(native(['exec', 'p1', '-T', 'true']).code, 0, 'options before or after the name, no "--"');
    // Not the native path's to judge: an unknown option, a container that does not exist.
    t.is(native(['exec', 'p1', '--bogus', '--', 'true']).code, 99);
    t.is(native(['exec', 'nope', '--', 'true']).code, 99);
    // Paused: node gives the message (the exec server is frozen too).
    env.ok(t, ['pause', 'p1']);
    t.is(native(['exec', 'p1', '--', 'true']).code, 99);
    const paused = env.cli(['exec', 'p1', '--', 'true']);
    t.regex(paused.stderr, /paused/);
    env.ok(t, ['resume', 'p1']);
    t.is(native(['exec', 'p1', '--', 'true']).code, 0);
    env.ok(t, ['stop', 'p1']);
    t.is(native(['exec', 'p1', '--', 'true']).code, 99, 'stopped: node says so');
  });

  test.serial("the native start takes the lock the TypeScript commands take; a killed holder's file is no lock", async (t) => {
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    t.true(fs.existsSync(planFile('p1')));
    const locks = path.join(env.paths.runDir, 'locks');
    // A TypeScript command holding p1 (lib/util/lock.ts, as withInstanceLock takes it).
    const holder = spawn(process.execPath, [path.join(repoRoot, 'dist/test/helpers/lock-holder.js'), 'hold', locks, 'ct-p1'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    t.teardown(() => holder.kill('SIGKILL'));
    await new Promise((resolve, reject) => {
      holder.stdout!.once('data', resolve);
      holder.once('exit', reject);
    });
    const busy = native(['start', 'p1']);
    t.is(busy.code, 99);
    t.regex(busy.stderr, /start plan not used: the container is locked/);
    t.true(fs.existsSync(planFile('p1')), 'a held lock keeps the plan');
    // Killed while holding it: the file stays, the lock does not.
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    t.true(fs.existsSync(path.join(locks, 'ct-p1.lock')));
    const r = native(['start', 'p1']);
    t.is(r.code, 0, r.stderr);
    t.is(status('p1'), 'Running');
    t.false(fs.existsSync(path.join(locks, 'ct-p1.lock')), 'the native start removed it with its release');
    env.ok(t, ['stop', 'p1']);
  });

  test.serial('delete and rename forget the plan', (t) => {
    env.ok(t, ['start', 'p1']);
    env.ok(t, ['stop', 'p1']);
    t.true(fs.existsSync(planFile('p1')));
    env.ok(t, ['rename', 'p1', 'p2']);
    t.false(fs.existsSync(planFile('p1')));
    t.is(native(['start', 'p2']).code, 99, 'no plan yet under the new name');
    env.ok(t, ['start', 'p2']);
    env.ok(t, ['delete', '--force', 'p2']);
    t.false(fs.existsSync(planFile('p2')));
  });

  // The cgroup v2 VM (v2-host.test.ts runs this file there) has no dnsmasq, ip or nft: the host has.
  const networkTools = ['dnsmasq', 'ip', 'nft'].every((t) => findTool(t));
  (networkTools ? test.serial : test.serial.skip)('a container with a nic: the replay checks the bridge, dnsmasq and leases, and stop leaves nothing', (t) => {
    env.ok(t, ['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    env.ok(t, ['create', 'busybox', 'n1']);
    env.ok(t, ['network', 'attach', br, 'n1', 'eth0']);
    const first = env.cli(['start', 'n1']);
    t.is(first.code, 0, first.stderr);
    t.true(fs.existsSync(planFile('n1')), `a nic on a managed network is replayable ${first.stderr}`);
    env.ok(t, ['stop', 'n1']);
    const runDir = path.join(env.paths.runDir, 'containers', 'n1');
    const dhcpHost = path.join(env.paths.runDir, 'networks', br, 'dhcp-hosts', 'n1');
    t.false(fs.existsSync(path.join(runDir, 'network.json')));

    const r = native(['start', 'n1']);
    t.is(r.code, 0, r.stderr);
    const nic = JSON.parse(fs.readFileSync(path.join(runDir, 'network.json'), 'utf8')).nics[0];
    t.true(fs.existsSync(`/sys/class/net/${nic.host}`), 'the host end of the veth');
    t.regex(fs.readFileSync(dhcpHost, 'utf8'), new RegExp(`^${nic.hwaddr},${nic.ipv4.replace(/\./g, '\\.')},n1`));
    // busybox's init runs udhcpc at boot: the address comes from the network's dnsmasq.
    env.ok(t, ['wait', 'n1', '--ip', '--timeout', '30']);
    t.deepEqual(ipv4Of(JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === 'n1')), [nic.ipv4]);
    env.ok(t, ['stop', 'n1']);
    t.deepEqual(hostLinks(nic.host), [], 'no veth left');
    t.false(fs.existsSync(dhcpHost));
    t.false(fs.existsSync(path.join(runDir, 'network.json')));

    // A change to the network: node's start applies it (the veth gets the bridge's MTU), then a fresh plan holds.
    env.ok(t, ['network', 'set', br, 'bridge.mtu=1400']);
    const changed = native(['start', 'n1']);
    t.is(changed.code, 99);
    t.regex(changed.stderr, new RegExp(`generations/network/${br}`));
    env.ok(t, ['start', 'n1']);
    const host = JSON.parse(fs.readFileSync(path.join(runDir, 'network.json'), 'utf8')).nics[0].host;
    t.is(fs.readFileSync(`/sys/class/net/${host}/mtu`, 'utf8').trim(), '1400');
    env.ok(t, ['stop', 'n1']);
    const fresh = native(['start', 'n1']);
    t.is(fresh.code, 0, fresh.stderr);
    env.ok(t, ['stop', 'n1']);

    // Another machine holds the address in dnsmasq's leases: node picks another one.
    const leases = path.join(env.paths.runDir, 'networks', br, 'leases');
    const before = fs.existsSync(leases) ? fs.readFileSync(leases, 'utf8') : undefined;
    fs.appendFileSync(leases, `${Math.floor(Date.now() / 1000) + 3600} 02:00:00:00:00:99 ${nic.ipv4} other *\n`);
    try {
      const c = native(['start', 'n1']);
      t.is(c.code, 99);
      t.regex(c.stderr, /leased to another machine/);
      t.false(fs.existsSync(dhcpHost), 'nothing written before the check failed');
    } finally {
      if (before === undefined) fs.rmSync(leases, { force: true });
      else fs.writeFileSync(leases, before);
    }
    env.ok(t, ['delete', '--force', 'n1']);
  });
}
