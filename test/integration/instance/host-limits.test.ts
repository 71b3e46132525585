import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { launcherPath, repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * The host limits containers share (lib/host/sysctl.ts, native/hostlimits.c). Nothing here changes
 * the host's sysctls or /etc: limits come from a fake /proc/sys (TSLXC_TEST_SYSCTL_ROOT) and
 * admin init writes to a fake sysctl.d (TSLXC_TEST_SYSCTL_D), or the kernel is probed inside a
 * user namespace of the test's own, whose inotify limit only that namespace sees.
 */
if (requireRoot(test)) {
  const env = new TestEnv('hlim');
  const fakeRoot = path.join(env.root, 'proc-sys');
  const fakeD = path.join(env.root, 'sysctl.d');
  const setFake = (values: Record<string, number>) => {
    for (const [k, v] of Object.entries(values)) {
      const file = path.join(fakeRoot, ...k.split('.'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `${v}\n`);
    }
  };
  const readFake = (k: string) => fs.readFileSync(path.join(fakeRoot, ...k.split('.')), 'utf8').trim();
  // A fake `node` first in PATH that exits 99: a start that succeeds with it went the native way.
  const fakeNodeDir = path.join(env.root, 'fakenode');
  fs.mkdirSync(fakeNodeDir, { recursive: true });
  fs.writeFileSync(path.join(fakeNodeDir, 'node'), '#!/bin/sh\nexit 99\n', { mode: 0o755 });
  const run = (args: string[], opts: { native?: boolean } = {}) => {
    const extra = { TSLXC_TEST_SYSCTL_ROOT: fakeRoot, TSLXC_TEST_SYSCTL_D: fakeD, ...(opts.native ? { PATH: `${fakeNodeDir}:${env.env.PATH}` } : {}) };
    const r = spawnSync(launcherPath, args, { env: { ...env.env, ...extra }, encoding: 'utf8', timeout: 180_000 });
    return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('Warning: '));

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  test.serial('launch and start warn in one line before the next Debian container runs out of inotify instances', (t) => {
    // Room for two Debian containers (9 each) and a little: the first fits with room for one more.
    setFake({ 'fs.inotify.max_user_instances': 20 });
    const first = run(['launch', 'debian', 'hl1']);
    t.is(first.code, 0, first.stderr);
    t.deepEqual(warnings(first.stderr), [], 'room for this one and the next: no warning');

    // The second fits, the one after it would not: said before it happens, with the fix.
    const second = run(['launch', 'debian', 'hl2']);
    t.is(second.code, 0, second.stderr);
    const w = warnings(second.stderr);
    t.is(w.length, 1, second.stderr);
    t.regex(w[0], /fs\.inotify\.max_user_instances is 20 .*"hl2" runs.*the next container like it \(about 9\) may fail to boot/);
    t.regex(w[0], /run "tslxc admin init --limits-only" or "sysctl -w fs\.inotify\.max_user_instances=1048576"/);
    t.regex(second.stdout, /Launched hl2/);

    // The native start (no node at all) says the same.
    t.is(run(['stop', 'hl2']).code, 0);
    t.is(run(['start', 'hl2']).code, 0, 'writes the start plan');
    t.is(run(['stop', 'hl2']).code, 0);
    const nat = run(['start', 'hl2'], { native: true });
    t.is(nat.code, 0, `the plan was replayed without node: ${nat.stderr}`);
    t.is(warnings(nat.stderr).length, 1, nat.stderr);
    t.regex(nat.stderr, /fs\.inotify\.max_user_instances is 20 .*the next container like it/);

    // A third would not fit at all.
    const third = run(['launch', 'debian', 'hl3']);
    t.is(third.code, 0, third.stderr);
    t.regex(
      warnings(third.stderr).join('\n'),
      /fs\.inotify\.max_user_instances is 20 and leaves room for about 2 more .*"hl3" needs about 9 and may fail to boot/,
    );

    // busybox init takes no inotify instance: no warning for it however few are left.
    const bb = run(['launch', 'busybox', 'hlbb']);
    t.is(bb.code, 0, bb.stderr);
    t.deepEqual(warnings(bb.stderr), []);

    // With LXD's value there is no warning.
    setFake({ 'fs.inotify.max_user_instances': 1048576 });
    t.is(run(['stop', 'hl3']).code, 0);
    const roomy = run(['start', 'hl3']);
    t.is(roomy.code, 0, roomy.stderr);
    t.deepEqual(warnings(roomy.stderr), []);
    for (const n of ['hl1', 'hl2', 'hl3', 'hlbb']) env.ok(t, ['delete', '--force', n]);
  });

  test.serial('every container takes a pty: the start warns before kernel.pty.max runs out', (t) => {
    // A container's devpts may use max - reserve of the host's pty count.
    setFake({ 'kernel.pty.max': 1030, 'kernel.pty.reserve': 1024, 'kernel.pty.nr': 5 });
    const r = run(['launch', 'busybox', 'hlpty']);
    t.is(r.code, 0, r.stderr);
    t.regex(warnings(r.stderr).join('\n'), /^Warning: kernel\.pty\.max is 1030 .*"hlpty".*sysctl -w kernel\.pty\.max=65536"$/);
    fs.rmSync(path.join(fakeRoot, 'kernel'), { recursive: true });
    env.ok(t, ['delete', '--force', 'hlpty']);
  });

  test.serial("the start's check asks the kernel: with few inotify instances left in a user namespace it warns", async (t) => {
    // Root of a fresh user namespace may lower that namespace's own limit; the host's stays.
    const helper = path.join(repoRoot, 'native/build/tslxc-helper');
    const runDir = path.join(env.paths.runDir, 'containers', 'probe');
    const probe = (max: number) => {
      const script = `echo ${max} > /proc/sys/user/max_inotify_instances && exec "$0" host-limits --name probe --run-dir "$1" --need inotify-instances=9`;
      const r = spawnSync('unshare', ['--user', '--map-root-user', 'sh', '-c', script, helper, runDir], { encoding: 'utf8' });
      t.is(r.status, 0, r.stderr);
      return r.stderr;
    };
    // A user namespace's inotify instances count against its parents' too, so host root's own
    // room bounds the probe: other suites' running containers may hold most of it for a while.
    let roomy = probe(12);
    for (let i = 0; i < 15 && !/once "probe" runs/.test(roomy); i++) {
      await new Promise((r) => setTimeout(r, 2000));
      roomy = probe(12);
    }
    t.regex(
      roomy,
      /^Warning: fs\.inotify\.max_user_instances is \d+ and leaves room for about \d+ more .*once "probe" runs.*the next container like it \(about 9\)/,
    );
    t.regex(probe(5), /^Warning: fs\.inotify\.max_user_instances is \d+ and leaves room for about [0-5] more .*"probe" needs about 9 and may fail to boot/);
  });

  test.serial('admin init on a terminal asks before it raises the host limits', async (t) => {
    fs.rmSync(fakeRoot, { recursive: true, force: true });
    fs.rmSync(fakeD, { recursive: true, force: true });
    setFake({ 'fs.inotify.max_user_instances': 128 });
    // script(1) gives the command a terminal; the answer is typed once the question is on it.
    const ask = (answer: string) =>
      new Promise<string>((resolve) => {
        const child = spawn('script', ['-qec', `${launcherPath} admin init --limits-only`, '/dev/null'], {
          env: { ...env.env, TSLXC_TEST_SYSCTL_ROOT: fakeRoot, TSLXC_TEST_SYSCTL_D: fakeD },
        });
        let out = '';
        let typed = false;
        child.stdout.on('data', (d) => {
          out += d;
          if (!typed && out.includes('Raise these 1 host limits')) {
            typed = true;
            child.stdin.write(`${answer}\r`);
          }
        });
        // A question that never comes fails the test on its output, not on ava's timeout.
        const stop = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('close', () => {
          clearTimeout(stop);
          resolve(out);
        });
      });
    const no = await ask('n');
    t.regex(no, /fs\.inotify\.max_user_instances +128 +1048576/);
    t.regex(no, /Note: 1 host limits containers share are below LXD's values/);
    t.is(readFake('fs.inotify.max_user_instances'), '128');
    t.false(fs.existsSync(path.join(fakeD, '60-tslxc.conf')));
    const yes = await ask('y');
    t.regex(yes, /Raised fs\.inotify\.max_user_instances: 128 -> 1048576/);
    t.is(readFake('fs.inotify.max_user_instances'), '1048576');
    t.regex(fs.readFileSync(path.join(fakeD, '60-tslxc.conf'), 'utf8'), /^fs\.inotify\.max_user_instances = 1048576$/m);
  });

  test.serial('admin init --limits-only --raise-limits raises the limits live and writes sysctl.d', (t) => {
    fs.rmSync(fakeRoot, { recursive: true, force: true });
    fs.rmSync(fakeD, { recursive: true, force: true });
    setFake({
      'fs.inotify.max_user_instances': 128,
      'fs.inotify.max_user_watches': 8192,
      'kernel.keys.maxkeys': 200,
      'kernel.pty.max': 4096,
      'vm.max_map_count': 70000,
      'kernel.dmesg_restrict': 0,
    });
    const host = run(['host']);
    t.is(host.code, 0, host.stderr);
    t.regex(host.stdout, /^fs\.inotify\.max_user_instances +128 +1048576 +\d+ +LOW +\S.*$/m);
    t.regex(host.stdout, /below LXD's recommended values \(raise them with "tslxc admin init --limits-only"\)/);

    // Without a terminal and without --raise-limits nothing is changed: one line says why.
    const refused = run(['admin', 'init', '--limits-only']);
    t.is(refused.code, 1);
    t.regex(refused.stderr, /^Error: admin init --limits-only needs a terminal to ask.*--raise-limits/);
    t.is(readFake('fs.inotify.max_user_instances'), '128');
    t.false(fs.existsSync(path.join(fakeD, '60-tslxc.conf')));

    const r = run(['admin', 'init', '--limits-only', '--raise-limits']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^Raised fs\.inotify\.max_user_instances: 128 -> 1048576$/m);
    t.is(readFake('fs.inotify.max_user_instances'), '1048576');
    t.is(readFake('fs.inotify.max_user_watches'), '1048576');
    t.is(readFake('kernel.keys.maxkeys'), '2000');
    t.is(readFake('kernel.pty.max'), '65536');
    t.is(readFake('vm.max_map_count'), '262144');
    t.is(readFake('kernel.dmesg_restrict'), '0');
    const conf = fs.readFileSync(path.join(fakeD, '60-tslxc.conf'), 'utf8');
    t.regex(conf, /^fs\.inotify\.max_user_instances = 1048576$/m);
    t.regex(conf, /^kernel\.keys\.maxkeys = 2000$/m);
    t.regex(run(['host']).stdout, /all at or above LXD's recommended values/);
  });
}
