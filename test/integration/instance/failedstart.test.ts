import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { tslxcStatus } from '../../helpers/instances.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { cgroupsOf, processesOf } from '../../helpers/leftovers.js';
import { hostLinks, teardownNetworks, uniqueBridge, useNetworkProfile } from '../../helpers/network.js';
import { loadConfig, saveConfig } from '../../../lib/state/config.js';
import { hostVethName } from '../../../lib/network/names.js';

/**
 * Starts that tell the truth: an init that dies right after its exec (systemd without an inotify
 * instance, say) is a failed start, reported in one line with the console's last lines and
 * leaving nothing behind, on every way a container is started; and a first start killed once
 * init runs leaves a container that ran, not one shown as never started.
 */
if (requireRoot(test)) {
  const env = new TestEnv('fs');
  const br = uniqueBridge();
  test.before(async () => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const n = env.cli(['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    if (n.code !== 0) throw new Error(n.stderr);
    await useNetworkProfile(env, br);
  });
  test.serial.after.always('the test network goes', async () => {
    await env.deleteContainers();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const runDir = (name: string) => path.join(env.paths.runDir, 'containers', name);
  const status = (t: ExecutionContext, name: string) =>
    tslxcStatus(JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((c: { name: string }) => c.name === name));
  /** What systemd 252 prints when it cannot get an inotify instance, then its exit. */
  const DYING = [
    '/bin/sh',
    '-c',
    'echo "Welcome to the test"; echo "Failed to create control group inotify object: Too many open files"; echo "Exiting PID 1..."; exit 3',
  ];
  const setInit = (name: string, init: string[]) => saveConfig(env.paths, { ...loadConfig(env.paths, name), init });

  function assertFailedStart(t: ExecutionContext, r: { code: number; stderr: string }, verb: string, name: string): void {
    t.is(r.code, 1, r.stderr);
    // (launch's progress lines go to stderr too)
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/^copy: /.test(l));
    t.is(errors.length, 1, `one line: ${r.stderr}`);
    t.regex(
      errors[0],
      new RegExp(
        `^Error: Cannot ${verb} "${name}": its init ended \\d+ ms after it was started \\(exit status 3\\); its console: Welcome to the test / Failed to create control group inotify object: Too many open files`,
      ),
      r.stderr,
    );
    t.notRegex(r.stderr, /Exiting PID 1/, 'shutdown chatter is left out');
  }

  function assertNothingLeft(t: ExecutionContext, name: string): void {
    const cmdline = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    // (the network's dnsmasq is the suite's)
    t.deepEqual(
      processesOf(env).filter((pid) => cmdline(pid).includes(runDir(name))),
      [],
      'no monitor or exec server',
    );
    t.deepEqual(
      cgroupsOf(env).filter((c) => c.endsWith(`/${name}`)),
      [],
      'no cgroup',
    );
    t.deepEqual(hostLinks(hostVethName(env.paths.stateDir, name, 'eth0')), [], 'no veth');
    for (const f of ['monitor.pid', 'init.pid', 'console.sock', 'exec.sock']) t.false(fs.existsSync(path.join(runDir(name), f)), `no ${f}`);
    t.false(fs.existsSync(path.join(env.paths.runDir, 'locks', `ct-${name}.lock`)), 'no lock');
  }

  test.serial('a start whose init dies at once fails in one line with the console, and leaves nothing', (t) => {
    env.ok(t, ['create', 'busybox', 'f1']);
    setInit('f1', DYING);
    assertFailedStart(t, env.cli(['start', 'f1']), 'start', 'f1');
    assertNothingLeft(t, 'f1');
    t.is(status(t, 'f1'), 'Created', 'a start that failed is no start');
    // Fixed, it starts, and what the failed start reserved is there for it again.
    setInit('f1', ['/sbin/init']);
    env.ok(t, ['start', 'f1']);
    t.is(status(t, 'f1'), 'Running');
    // restart: the same failure, the same line.
    setInit('f1', DYING);
    assertFailedStart(t, env.cli(['restart', 'f1', '--force']), 'start', 'f1');
    assertNothingLeft(t, 'f1');
    t.is(status(t, 'f1'), 'Stopped');
    env.ok(t, ['delete', 'f1']);
  });

  test.serial('the same through the native start (a replayed plan whose init now dies)', (t) => {
    env.ok(t, ['create', 'busybox', 'f2']);
    // init is a script in the root: the plan holds while the script changes.
    setInit('f2', ['/bin/sh', '/root/init.sh']);
    const script = (text: string) => {
      const f = path.join(env.root, 'init.sh');
      fs.writeFileSync(f, text);
      env.ok(t, ['file', 'push', f, 'f2/root/init.sh']);
    };
    script('exec /sbin/init\n');
    for (let i = 0; i < 2; i++) {
      env.ok(t, ['start', 'f2']);
      env.ok(t, ['stop', 'f2', '--force']);
    }
    t.true(fs.existsSync(path.join(env.paths.runDir, 'plans', 'f2')), 'a plan to replay');
    script(`${DYING[2]}\n`);
    // Repeated: an init that ends within microseconds of its exec once raced the monitor's check
    // of the exec and came out as "exited at once" without its console.
    for (let i = 0; i < 5; i++) {
      assertFailedStart(t, env.cli(['start', 'f2']), 'start', 'f2');
      assertNothingLeft(t, 'f2');
    }
    t.is(status(t, 'f2'), 'Stopped');
    env.ok(t, ['delete', 'f2']);
  });

  test.serial('an init that ends within microseconds of its exec is an ended init, each time', (t) => {
    env.ok(t, ['create', 'busybox', 'f5']);
    // busybox false: no output, no work; it is gone before the monitor has read the exec's EOF.
    setInit('f5', ['/bin/false']);
    for (let i = 0; i < 8; i++) {
      const r = env.cli(['start', 'f5']);
      t.is(r.code, 1, r.stderr);
      t.regex(r.stderr.trim(), /^Error: Cannot start "f5": its init ended \d+ ms after it was started \(exit status 1\)/, r.stderr);
      assertNothingLeft(t, 'f5');
    }
    env.ok(t, ['delete', 'f5']);
  });

  test.serial('a launch whose init dies removes what it created, in one line with the console', (t) => {
    env.ok(t, ['create', 'busybox', 'f3']);
    setInit('f3', DYING);
    env.ok(t, ['publish', 'f3', '--alias', 'dying']);
    env.ok(t, ['delete', 'f3']);
    assertFailedStart(t, env.cli(['launch', 'dying', 'f4']), 'launch', 'f4');
    assertNothingLeft(t, 'f4');
    t.is(status(t, 'f4'), undefined, 'not listed');
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'containers', 'f4')));
    env.ok(t, ['image', 'delete', 'dying']);
  });

  test.serial('a first start killed once init runs leaves a container that ran: Stopped after stop, not Created', async (t) => {
    env.ok(t, ['create', 'busybox', 'k1']);
    t.is(status(t, 'k1'), 'Created');
    // The CLI is killed as soon as init is there (init.pid written), before the start returns.
    const child = spawn(process.execPath, [cliPath, 'start', 'k1'], { env: env.env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    let seen = false;
    for (let i = 0; i < 3000 && child.exitCode === null && !seen; i++) {
      seen = fs.existsSync(path.join(runDir('k1'), 'init.pid'));
      if (!seen) await sleep(2);
    }
    child.kill('SIGKILL');
    await exited;
    t.true(seen, "init was exec'd before the kill");
    for (let i = 0; i < 100 && status(t, 'k1') !== 'Running'; i++) await sleep(50);
    t.is(status(t, 'k1'), 'Running');
    env.ok(t, ['stop', 'k1', '--force']);
    t.is(status(t, 'k1'), 'Stopped', 'it ran: not "never started"');
    env.ok(t, ['delete', 'k1']);
  });
}
