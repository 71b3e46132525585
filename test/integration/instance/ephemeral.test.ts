import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * An ephemeral container that powers off from inside is deleted with no `tslxc serve` running,
 * as LXC's lxc.ephemeral does: its monitor runs the on-exit program the start gave it. A reboot
 * inside and a restart keep it; a stop deletes it once, with nothing left behind.
 */
if (requireRoot(test)) {
  const env = new TestEnv('ephem');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  const names = () => (JSON.parse(env.cli(['list', '--format', 'json']).stdout) as Array<{ name: string }>).map((c) => c.name);
  const status = (name: string) =>
    (JSON.parse(env.cli(['list', '--format', 'json']).stdout) as Array<{ name: string; status: string }>).find((c) => c.name === name)?.status;
  const until = async (cond: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  };
  /** What a container keeps on the host: its dirs in the state and run dirs, its lock file. */
  const leftFiles = (name: string) =>
    [`${env.paths.stateDir}/containers/${name}`, `${env.paths.runDir}/containers/${name}`, `${env.paths.runDir}/locks/ct-${name}.lock`].filter((f) =>
      fs.existsSync(f),
    );

  test.serial('a poweroff inside deletes an ephemeral container within seconds, with no server', async (t) => {
    env.ok(t, ['launch', '-e', 'busybox', 'e1']);
    const started = Date.now();
    // busybox's init powers off on SIGUSR2 (what its poweroff sends).
    env.cli(['exec', 'e1', '--', 'kill', '-USR2', '1']);
    t.true(await until(() => !names().includes('e1'), 15_000), 'deleted by its monitor');
    t.log(`gone ${Date.now() - started} ms after the poweroff`);
    t.deepEqual(leftFiles('e1'), [], 'nothing of e1 is left');
    // A container that is not ephemeral stays, stopped.
    env.ok(t, ['launch', 'busybox', 'k1']);
    env.cli(['exec', 'k1', '--', 'kill', '-USR2', '1']);
    t.true(await until(() => status('k1') === 'Stopped', 10_000));
    await new Promise((r) => setTimeout(r, 1000));
    t.is(status('k1'), 'Stopped', 'kept');
    env.ok(t, ['delete', 'k1']);
  });

  test.serial('a restart and a reboot inside keep an ephemeral container; its stop deletes it once', async (t) => {
    env.ok(t, ['launch', '-e', 'busybox', 'e2']);
    env.ok(t, ['restart', '--force', 'e2']);
    await new Promise((r) => setTimeout(r, 1500));
    t.is(status('e2'), 'Running', 'a restart keeps it');
    // busybox's init reboots on SIGTERM.
    env.cli(['exec', 'e2', '--', 'kill', '-TERM', '1']);
    await new Promise((r) => setTimeout(r, 2000));
    t.is(status('e2'), 'Running', 'a reboot inside keeps it');
    env.ok(t, ['stop', '--force', 'e2']);
    t.false(names().includes('e2'), 'deleted by its stop');
    await new Promise((r) => setTimeout(r, 1500));
    t.deepEqual(leftFiles('e2'), [], "the monitor's on-exit found nothing to do and left nothing");
    // The name is free again, and the new container is not deleted by an old on-exit.
    env.ok(t, ['launch', 'busybox', 'e2']);
    await new Promise((r) => setTimeout(r, 500));
    t.is(status('e2'), 'Running');
    env.ok(t, ['delete', '--force', 'e2']);
  });
}
