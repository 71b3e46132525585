import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';

/** create --env/--init override the image's metadata for one container; config show says which. */
if (requireRoot(test)) {
  const env = new TestEnv('ovr');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  test.serial.after.always(async () => {
    await env.cleanup();
  });

  test('config show tells image values from overrides', (t) => {
    env.ok(t, ['create', 'busybox', 'o1', '--env', 'FOO=bar', '--init', '/bin/sh']);
    env.ok(t, ['create', 'busybox', 'o2']);
    const o1 = JSON.parse(env.ok(t, ['config', 'show', 'o1', '--format', 'json']));
    t.deepEqual(o1.metadata.init, { value: '/bin/sh', from: 'override', image: '/sbin/init' });
    t.deepEqual(o1.metadata.stop_signal, { value: 'SIGUSR2', from: 'image' });
    t.deepEqual(o1.metadata['environment.FOO'], { value: 'bar', from: 'override' });
    t.is(o1.image.alias, 'busybox');
    const o2 = JSON.parse(env.ok(t, ['config', 'show', 'o2', '--format', 'json']));
    t.is(o2.metadata.init.from, 'image');
    const table = env.ok(t, ['config', 'show', 'o1', '--expanded']);
    t.regex(table, /init\s+\/bin\/sh\s+override \(image: \/sbin\/init\)/);
    t.regex(table, /image\.os\s+busybox\s+image \(read-only\)/);
  });
}
