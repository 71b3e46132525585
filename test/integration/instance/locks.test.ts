import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { launcherPath, repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { teardownNetworks, uniqueBridge, useNetworkProfile } from '../../helpers/network.js';
import { findTool } from '../../../lib/util/exec.js';

/**
 * Container locks across real commands: lock files a killed command leaves are swept, and parallel
 * launches on one managed network never get the same address (the old mkdir lock could be held
 * twice, and two starts then allocated one IPv4 address).
 */
if (requireRoot(test)) {
  const env = new TestEnv('locks');
  const locks = path.join(env.paths.runDir, 'locks');
  const lockFile = (name: string) => path.join(locks, `ct-${name}.lock`);
  const holderScript = path.join(repoRoot, 'dist/test/helpers/lock-holder.js');
  /** The CLI killed (SIGKILL, by itself) at a crash point (lib/util/crash.ts). */
  const crashAt = (step: string, args: string[]) => spawnSync(launcherPath, args, { env: { ...env.env, TSLXC_TEST_CRASH_AT: step }, encoding: 'utf8' });
  const names = () =>
    JSON.parse(env.cli(['list', '--format', 'json']).stdout)
      .map((c: { name: string }) => c.name)
      .sort();

  /** A process holding ct-NAME's lock as a tslxc command would; resolves once it holds it. */
  async function holder(t: ExecutionContext, name: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, [holderScript, 'hold', locks, `ct-${name}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => child.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
    });
    return child;
  }

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  const br = uniqueBridge();
  test.serial.after.always('the test network goes', async () => {
    await env.deleteContainers();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial('lock files of a launch or copy killed before its container appeared are swept by list, create and delete', async (t) => {
    const launch = crashAt('create:locked', ['launch', 'busybox', 'k1']);
    t.is(launch.signal, 'SIGKILL', launch.stderr);
    t.true(fs.existsSync(lockFile('k1')), 'the killed launch left its lock file');
    t.deepEqual(names(), [], 'and no container');
    t.false(fs.existsSync(lockFile('k1')), 'list swept it');

    env.ok(t, ['create', 'busybox', 'c1']);
    const copy = crashAt('copy:started', ['copy', 'c1', 'k2']);
    t.is(copy.signal, 'SIGKILL', copy.stderr);
    t.true(fs.existsSync(lockFile('k2')));
    // A lock of a name that does not exist, held by a live command (a create on its way): kept.
    const live = await holder(t, 'k3');
    env.ok(t, ['create', 'busybox', 'c2']);
    t.false(fs.existsSync(lockFile('k2')), "create swept the killed copy's lock");
    t.true(fs.existsSync(lockFile('k3')), 'a held lock is no leftover');

    live.kill('SIGKILL');
    await new Promise((r) => live.once('exit', r));
    env.ok(t, ['delete', 'c2']);
    t.false(fs.existsSync(lockFile('k3')), "delete swept the dead holder's lock");
    t.false(fs.existsSync(lockFile('c2')));
    // The source's lock (c1 exists: not swept) is no lock: the next command on c1 takes it.
    env.ok(t, ['start', 'c1']);
    env.ok(t, ['delete', '--force', 'c1']);
    t.deepEqual(fs.readdirSync(locks), [], 'no lock file left');
  });

  test.serial('info shows the dir a create killed before its config left as list does: an Error that delete removes', (t) => {
    for (const step of ['create:dir-made', 'create:configured']) {
      const launch = crashAt(step, ['launch', 'busybox', 'k4']);
      t.is(launch.signal, 'SIGKILL', launch.stderr);
      const listed = JSON.parse(env.ok(t, ['list', '--format', 'json'])) as Array<{ name: string; status: string }>;
      t.is(listed.find((c) => c.name === 'k4')?.status, 'Error', step);
      const info = env.cli(['info', 'k4']);
      t.is(info.code, 0, info.stderr);
      t.regex(info.stdout, /^Status: ERROR \(.*tslxc delete k4.*\)$/m, step);
      const json = JSON.parse(env.ok(t, ['info', 'k4', '--format', 'json'])) as { name: string; status: string };
      t.is(json.status, 'Error', step);
      env.ok(t, ['delete', 'k4']);
      t.is(env.cli(['info', 'k4']).code, 1, 'gone');
    }
  });

  test.serial("a command that waits for a container's lock goes on when its holder is killed", async (t) => {
    env.ok(t, ['create', 'busybox', 'w1']);
    const held = await holder(t, 'w1');
    const started = env.cliAsync(['start', 'w1']);
    await new Promise((r) => setTimeout(r, 1000));
    held.kill('SIGKILL');
    const r = await started;
    t.is(r.code, 0, r.stderr);
    env.ok(t, ['delete', '--force', 'w1']);
  });

  // 20 launches at once on one managed network, 3 times: every container gets its own address.
  // (The full figure, 20 runs, is bench/launches.ts.)
  const networkTools = ['dnsmasq', 'ip', 'nft'].every((x) => findTool(x));
  (networkTools ? test.serial : test.serial.skip)('20 parallel launches on a managed network get 20 distinct addresses', async (t) => {
    t.timeout(15 * 60_000);
    env.ok(t, ['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    await useNetworkProfile(env, br);
    t.teardown(() =>
      fs.writeFileSync(path.join(env.paths.stateDir, 'profiles', 'default.yaml'), 'description: test default (no network)\nconfig: {}\ndevices: {}\n'),
    );
    for (let run = 0; run < 3; run++) {
      const cts = Array.from({ length: 20 }, (_, i) => `p${run}-${i}`);
      const launched = await Promise.all(cts.map((n) => env.cliAsync(['launch', 'busybox', n])));
      launched.forEach((r, i) => t.is(r.code, 0, `${cts[i]}: ${r.stderr}`));
      const addrs = cts.map((n) => JSON.parse(fs.readFileSync(path.join(env.paths.runDir, 'containers', n, 'network.json'), 'utf8')).nics[0].ipv4 as string);
      t.is(new Set(addrs).size, cts.length, `run ${run + 1}: duplicate addresses in ${addrs.join(' ')}`);
      // And dnsmasq hands each its own (a duplicate dhcp-host entry left the second without one).
      const waited = await Promise.all(cts.map((n) => env.cliAsync(['wait', n, '--ip', '--timeout', '60'])));
      waited.forEach((r, i) => t.is(r.code, 0, `${cts[i]} got no address: ${r.stderr}`));
      const del = await env.cliAsync(['delete', '--force', ...cts]);
      t.is(del.code, 0, del.stderr);
    }
  });
}
