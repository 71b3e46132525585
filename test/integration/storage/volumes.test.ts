import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { mountsOf } from '../../helpers/leftovers.js';

/** Custom volumes on dir/overlay and btrfs pools: outlive containers, refuse deletion in use, snapshot, export/import. */
if (requireRoot(test)) {
  const env = new TestEnv('vo');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const p = env.cli(['storage', 'create', 'bt', 'btrfs', 'size=200MiB']);
    if (p.code !== 0) throw new Error(p.stderr);
  });
  leftoverHooks(test, env);

  for (const pool of ['default', 'bt']) {
    test.serial(`${pool}: a volume outlives its container, is refused deletion in use, snapshots and restores, exports and imports`, (t) => {
      const c = `v-${pool}`;
      env.ok(t, ['storage', 'volume', 'create', pool, 'data']);
      env.ok(t, ['launch', 'busybox', c, '-s', pool]);
      const t0 = Date.now();
      env.ok(t, ['storage', 'volume', 'attach', pool, 'data', c, '/srv/data']);
      env.ok(t, ['restart', c]);
      t.log(`attach + restart: ${Date.now() - t0} ms`);
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo kept > /srv/data/f']);
      const del = env.cli(['storage', 'volume', 'delete', pool, 'data']);
      t.is(del.code, 1);
      t.regex(del.stderr, new RegExp(`in use by ${c}`));
      t.regex(env.cli(['storage', 'delete', pool]).stderr, /in use|volumes/);
      env.ok(t, ['delete', '--force', c]);
      env.ok(t, ['storage', 'volume', 'snapshot', pool, 'data', 's1']);
      env.ok(t, ['launch', 'busybox', `${c}-2`, '-s', 'default']);
      env.ok(t, ['storage', 'volume', 'attach', pool, 'data', `${c}-2`, '/mnt/x']);
      env.ok(t, ['restart', `${c}-2`]);
      t.is(env.ok(t, ['exec', `${c}-2`, '--', 'cat', '/mnt/x/f']), 'kept\n');
      env.ok(t, ['exec', `${c}-2`, '--', 'sh', '-c', 'echo changed > /mnt/x/f']);
      t.regex(env.cli(['storage', 'volume', 'restore', pool, 'data', 's1']).stderr, /running/);
      env.ok(t, ['stop', `${c}-2`]);
      env.ok(t, ['storage', 'volume', 'restore', pool, 'data', 's1']);
      const tgz = `${env.root}/data-${pool}.tar.gz`;
      env.ok(t, ['storage', 'volume', 'export', pool, 'data', tgz]);
      env.ok(t, ['storage', 'volume', 'import', pool, 'imp', tgz]);
      env.ok(t, ['storage', 'volume', 'copy', pool, 'imp', 'cp']);
      env.ok(t, ['storage', 'volume', 'rename', pool, 'cp', 'cp2']);
      env.ok(t, ['storage', 'volume', 'attach', pool, 'cp2', `${c}-2`, '/mnt/y']);
      env.ok(t, ['start', `${c}-2`]);
      t.is(env.ok(t, ['exec', `${c}-2`, '--', 'cat', '/mnt/x/f', '/mnt/y/f']), 'kept\nkept\n');
      const shown = env.ok(t, ['storage', 'volume', 'show', pool, 'data']);
      t.regex(shown, new RegExp(`used_by:\\n  - ${c}-2`));
      t.regex(shown, /name: s1/);
      env.ok(t, ['delete', '--force', `${c}-2`]);
      for (const v of ['data', 'imp', 'cp2']) env.ok(t, ['storage', 'volume', 'delete', pool, v]);
      t.deepEqual(JSON.parse(env.ok(t, ['storage', 'volume', 'list', pool, '--format', 'json'])), []);
    });
  }

  test.serial('a volume disk device is validated: the pool and the volume must exist', (t) => {
    env.ok(t, ['create', 'busybox', 'vv']);
    const r = env.cli(['storage', 'volume', 'attach', 'default', 'nosuch', 'vv', '/x']);
    t.is(r.code, 1);
    t.regex(r.stderr, /not found/);
    const byHand = env.cli(['config', 'device', 'add', 'vv', 'd', 'disk', 'pool=default', 'source=nosuch', 'path=/x']);
    t.is(byHand.code, 1);
    t.regex(byHand.stderr, /Invalid disk device "d": Storage volume "default\/nosuch" not found/);
    // A profile naming a volume holds it too.
    env.ok(t, ['storage', 'volume', 'create', 'default', 'shared']);
    env.ok(t, ['profile', 'create', 'withvol']);
    env.ok(t, ['profile', 'device', 'add', 'withvol', 'sh', 'disk', 'pool=default', 'source=shared', 'path=/shared']);
    t.regex(env.cli(['storage', 'volume', 'delete', 'default', 'shared']).stderr, /in use by profile:withvol/);
    env.ok(t, ['profile', 'delete', 'withvol']);
    env.ok(t, ['storage', 'volume', 'delete', 'default', 'shared']);
    env.ok(t, ['storage', 'volume', 'create', 'bt', 'gone']);
    env.ok(t, ['storage', 'volume', 'attach', 'bt', 'gone', 'vv', '/x']);
    t.regex(env.cli(['storage', 'volume', 'rename', 'bt', 'gone', 'g2']).stderr, /in use by vv/);
    env.ok(t, ['storage', 'volume', 'detach', 'bt', 'gone', 'vv']);
    env.ok(t, ['storage', 'volume', 'delete', 'bt', 'gone']);
    env.ok(t, ['delete', 'vv']);
    env.ok(t, ['storage', 'delete', 'bt']);
    t.deepEqual(mountsOf(env), []);
  });
}
