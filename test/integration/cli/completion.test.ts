import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/** Completion over real containers: running and stopped as start and stop see them, snapshots, images, profiles. */
if (requireRoot(test)) {
  const env = new TestEnv('compl');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  /** What a Tab after `tslxc LINE` offers (the last word is the one being completed). */
  const offers = (t: import('ava').ExecutionContext, line: string) =>
    env
      .ok(t, ['__complete', ...line.split(' ')])
      .split('\n')
      .filter(Boolean);

  test.serial('start offers the stopped containers, stop the running ones; snapshots, images, profiles', (t) => {
    env.ok(t, ['launch', 'busybox', 'up1']);
    env.ok(t, ['create', 'busybox', 'down1']);
    env.ok(t, ['create', 'busybox', 'down2']);
    env.ok(t, ['snapshot', 'create', 'down1', 'before']);
    env.ok(t, ['profile', 'create', 'team']);
    t.deepEqual(offers(t, 'info '), ['down1', 'down2', 'up1']);
    t.deepEqual(offers(t, 'start '), ['down1', 'down2']);
    t.deepEqual(offers(t, 'stop '), ['up1']);
    t.deepEqual(offers(t, 'exec u'), ['up1']);
    t.deepEqual(offers(t, 'copy down1/'), ['down1/before']);
    t.deepEqual(offers(t, 'snapshot restore down1 '), ['before']);
    t.true(offers(t, 'launch ').includes('busybox'));
    t.true(offers(t, 'launch busybox c --profile ').includes('team'));
    t.deepEqual(offers(t, 'storage show '), ['default']);
    // After a stop, it moves from one list to the other.
    env.ok(t, ['stop', 'up1', '--force']);
    t.deepEqual(offers(t, 'start '), ['down1', 'down2', 'up1']);
    t.deepEqual(offers(t, 'stop '), []);
  });
}
