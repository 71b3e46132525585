import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { cgroupsOf, mountsOf, processesOf } from '../../helpers/leftovers.js';

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
  test.after.always(async () => {
    await env.cleanup().catch(() => {});
    for (const l of mountsOf(env).reverse()) spawnSync('umount', ['-l', l.split(' ')[4]]);
    fs.rmSync(env.root, { recursive: true, force: true });
  });
  test.after.always('nothing of the suite is left on the host', (t) => {
    t.deepEqual(processesOf(env), []);
    t.deepEqual(cgroupsOf(env), []);
    t.deepEqual(mountsOf(env), []);
  });

  for (const pool of ['default', 'plain', 'bt']) {
    test.serial(`${pool}: snapshot, restore, copy (own hostname and machine-id), copy of a snapshot`, (t) => {
      const c = `s-${pool}`;
      env.ok(t, ['launch', 'busybox', c, '-s', pool]);
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo one > /root/state']);
      t.regex(env.cli(['snapshot', 'create', c, 'x']).stderr, /running/);
      env.ok(t, ['stop', c]);
      env.ok(t, ['snapshot', 'create', c, 'one']);
      env.ok(t, ['start', c]);
      env.ok(t, ['exec', c, '--', 'sh', '-c', 'echo two > /root/state; rm /etc/passwd']);
      env.ok(t, ['stop', c]);
      t.deepEqual(JSON.parse(env.ok(t, ['snapshot', 'list', c, '--format', 'json'])).map((s: { name: string }) => s.name), ['one']);
      env.ok(t, ['copy', c, `${c}-k`]);
      env.ok(t, ['copy', `${c}/one`, `${c}-o`]);
      env.ok(t, ['snapshot', 'restore', c, 'one']);
      env.ok(t, ['start', c]);
      t.is(env.ok(t, ['exec', c, '--', 'cat', '/root/state']), 'one\n');
      t.is(env.cli(['exec', c, '--', 'test', '-f', '/etc/passwd']).code, 0);
      env.ok(t, ['start', `${c}-k`]);
      t.is(env.ok(t, ['exec', `${c}-k`, '--', 'cat', '/root/state']), 'two\n');
      t.is(env.ok(t, ['exec', `${c}-k`, '--', 'hostname']).trim(), `${c}-k`);
      t.not(env.ok(t, ['exec', `${c}-k`, '--', 'cat', '/etc/machine-id']), env.ok(t, ['exec', c, '--', 'cat', '/etc/machine-id']));
      env.ok(t, ['start', `${c}-o`]);
      t.is(env.ok(t, ['exec', `${c}-o`, '--', 'cat', '/root/state']), 'one\n');
      env.ok(t, ['delete', '--force', c, `${c}-k`, `${c}-o`]);
      t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/containers`).filter((e) => e.startsWith(c) || e.startsWith('.')), []);
    });
  }

  test.serial('pools are deleted when unused, unmounted', (t) => {
    env.ok(t, ['storage', 'delete', 'bt']);
    env.ok(t, ['storage', 'delete', 'plain']);
    t.deepEqual(mountsOf(env), []);
  });
}
