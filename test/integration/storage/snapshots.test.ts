import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { mountsOf } from '../../helpers/leftovers.js';

/** Snapshots, restore and copy on each driver (busybox). */
if (requireRoot(test)) {
  const env = new TestEnv('sn');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const p = env.cli(['storage', 'create', 'bt', 'btrfs', 'size=300MiB']);
    if (p.code !== 0) throw new Error(p.stderr);
    env.cli(['storage', 'create', 'plain', 'dir']);
  });
  leftoverHooks(test, env);

  for (const pool of ['default', 'plain', 'bt']) {
    test.serial(`${pool}: snapshot, restore, copy (own hostname and machine-id), copy of a snapshot`, (t) => {
      const c = `s-${pool}`;
      env.ok(t, ['launch', 'busybox', c, '-s', pool]);
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo one > /root/state']);
      // A running container: frozen for the copy, thawed after, still running.
      const live = env.ok(t, ['snapshot', 'create', c, 'live']);
      t.regex(live, /frozen for \d+ ms/);
      t.log(live.trim());
      t.is(env.ok(t, ['exec', c, '--', 'cat', '/root/state']), 'one\n');
      t.is(JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((x: { name: string }) => x.name === c)?.status, 'Running');
      env.ok(t, ['snapshot', 'rename', c, 'live', 'live2']);
      env.ok(t, ['stop', c]);
      env.ok(t, ['snapshot', 'create', c, 'one']);
      env.ok(t, ['config', 'set', c, 'user.after=1']);
      env.ok(t, ['start', c]);
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo two > /root/state; rm /etc/passwd']);
      env.ok(t, ['stop', c]);
      t.deepEqual(
        JSON.parse(env.ok(t, ['snapshot', 'list', c, '--format', 'json'])).map((s: { name: string }) => s.name),
        ['live2', 'one'],
      );
      env.ok(t, ['copy', c, `${c}-k`]);
      env.ok(t, ['copy', `${c}/one`, `${c}-o`]);
      env.ok(t, ['copy', `${c}/live2`, `${c}-l`]);
      env.ok(t, ['snapshot', 'restore', c, 'one']);
      t.is(env.cli(['config', 'get', c, 'user.after']).stdout.trim(), '', 'the config is restored too');
      env.ok(t, ['start', c]);
      env.ok(t, ['start', `${c}-l`]);
      t.is(env.ok(t, ['exec', `${c}-l`, '--', 'cat', '/root/state']), 'one\n');
      t.is(env.ok(t, ['exec', c, '--', 'cat', '/root/state']), 'one\n');
      t.is(env.cli(['exec', c, '--', 'test', '-f', '/etc/passwd']).code, 0);
      // The restored root shares nothing with the snapshot (dir links unchanged files from the
      // old root only): changing a file in place after the restore leaves the snapshot as it was.
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo changed >> /etc/group; echo three > /root/state']);
      env.ok(t, ['stop', c]);
      env.ok(t, ['snapshot', 'restore', c, 'one']);
      env.ok(t, ['start', c]);
      t.is(env.ok(t, ['exec', c, '--', 'cat', '/root/state']), 'one\n');
      t.notRegex(env.ok(t, ['exec', c, '--', 'cat', '/etc/group']), /changed/);
      env.ok(t, ['start', `${c}-k`]);
      t.is(env.ok(t, ['exec', `${c}-k`, '--', 'cat', '/root/state']), 'two\n');
      t.is(env.ok(t, ['exec', `${c}-k`, '--', 'hostname']).trim(), `${c}-k`);
      t.not(env.ok(t, ['exec', `${c}-k`, '--', 'cat', '/etc/machine-id']), env.ok(t, ['exec', c, '--', 'cat', '/etc/machine-id']));
      env.ok(t, ['start', `${c}-o`]);
      t.is(env.ok(t, ['exec', `${c}-o`, '--', 'cat', '/root/state']), 'one\n');
      env.ok(t, ['delete', '--force', c, `${c}-k`, `${c}-o`, `${c}-l`]);
      t.deepEqual(
        fs.readdirSync(`${env.paths.stateDir}/containers`).filter((e) => e.startsWith(c) || e.startsWith('.')),
        [],
      );
    });
  }

  test.serial('pools are deleted when unused, unmounted', (t) => {
    env.ok(t, ['storage', 'delete', 'bt']);
    env.ok(t, ['storage', 'delete', 'plain']);
    t.deepEqual(mountsOf(env), []);
  });
}
