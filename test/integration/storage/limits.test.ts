import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/** Root disk size limits (btrfs qgroups; refused elsewhere) and a full loop pool (ENOSPC). */
if (requireRoot(test)) {
  const env = new TestEnv('sl');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const p of [
      ['bt', 'btrfs', 'size=300MiB'],
      ['tiny', 'btrfs', 'size=128MiB'],
      ['plain', 'dir'],
    ]) {
      const c = env.cli(['storage', 'create', ...p]);
      if (c.code !== 0) throw new Error(c.stderr);
    }
  });
  leftoverHooks(test, env);

  test.serial('size= on the root disk: refused on overlay and dir with a clear line, enforced on btrfs, lifted when removed', (t) => {
    env.ok(t, ['create', 'busybox', 'o1']);
    env.ok(t, ['create', 'busybox', 'd1', '-s', 'plain']);
    for (const [c, pool, driver] of [
      ['o1', 'default', 'overlay'],
      ['d1', 'plain', 'dir'],
    ]) {
      const r = env.cli(['config', 'device', 'add', c, 'root', 'disk', 'path=/', `pool=${pool}`, 'size=50MiB']);
      t.is(r.code, 1);
      t.regex(
        r.stderr,
        new RegExp(`Cannot limit the root disk of "${c}" \\(size=50MiB\\): its pool "${pool}" uses the ${driver} driver, which cannot enforce a size`),
      );
      t.is(r.stderr.trim().split('\n').length, 1);
    }
    // A profile asking for a size: a create on a pool that cannot enforce it fails, and leaves nothing.
    env.ok(t, ['profile', 'create', 'sized']);
    env.ok(t, ['profile', 'device', 'add', 'sized', 'root', 'disk', 'path=/', 'pool=default', 'size=40MiB']);
    const bad = env.cli(['create', 'busybox', 'x1', '-p', 'sized']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /cannot enforce a size/);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/x1`));
    env.ok(t, ['launch', 'busybox', 'b1', '-p', 'sized', '-s', 'bt']);
    const dd = env.cli(['exec', 'b1', '--', 'sh', '-c', 'dd if=/dev/zero of=/root/big bs=1M count=80 2>&1; sync']);
    t.regex(dd.stdout + dd.stderr, /Disk quota exceeded/);
    env.ok(t, ['exec', 'b1', '--', 'rm', '/root/big']);
    env.ok(t, ['stop', 'b1']);
    env.ok(t, ['profile', 'remove', 'b1', 'sized']);
    env.ok(t, ['start', 'b1']);
    env.ok(t, ['exec', 'b1', '--', 'sh', '-c', 'dd if=/dev/zero of=/root/big bs=1M count=80 2>/dev/null && sync && rm /root/big']);
    env.ok(t, ['delete', '--force', 'b1', 'o1', 'd1']);
  });

  test.serial('a full loop pool: a clear error, nothing half-made, every container intact', (t) => {
    env.ok(t, ['launch', 'busybox', 'in1', '-s', 'tiny']);
    env.ok(t, ['exec', 'in1', '--', 'sh', '-c', 'echo safe > /root/state']);
    env.ok(t, ['stop', 'in1']);
    env.ok(t, ['snapshot', 'create', 'in1', 's0']);
    env.ok(t, ['launch', 'busybox', 'big', '-s', 'plain']);
    env.ok(t, ['exec', 'big', '--', 'dd', 'if=/dev/urandom', 'of=/root/blob', 'bs=1M', 'count=160']);
    env.ok(t, ['stop', 'big']);
    const r = env.cli(['copy', 'big', 'big2', '-s', 'tiny']);
    t.is(r.code, 1);
    t.regex(r.stderr, /^Error: Storage pool "tiny" is full: .*No space left on device/m);
    t.regex(r.stderr, /tslxc storage set tiny size=/);
    t.false(JSON.parse(env.ok(t, ['list', '--format', 'json'])).some((c: { name: string }) => c.name === 'big2'));
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/containers`).sort(), ['big', 'in1']);
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/storage-pools/tiny/containers`), ['in1']);
    // A volume import that does not fit either.
    const tgz = `${env.root}/blob.tgz`;
    spawnSync('tar', ['-C', `${env.paths.stateDir}/containers/big/rootfs/root`, '-cf', tgz, 'blob']);
    const v = env.cli(['storage', 'volume', 'import', 'tiny', 'vb', tgz]);
    t.is(v.code, 1);
    t.regex(v.stderr, /Storage pool "tiny" is full/);
    t.deepEqual(JSON.parse(env.ok(t, ['storage', 'volume', 'list', 'tiny', '--format', 'json'])), []);
    // Whatever was there works as before, and the space is back.
    env.ok(t, ['start', 'in1']);
    t.is(env.ok(t, ['exec', 'in1', '--', 'cat', '/root/state']), 'safe\n');
    env.ok(t, ['exec', 'in1', '--', 'sh', '-c', 'echo more > /root/more']);
    env.ok(t, ['stop', 'in1']);
    env.ok(t, ['snapshot', 'restore', 'in1', 's0']);
    // Grown, the pool takes the copy.
    env.ok(t, ['storage', 'set', 'tiny', 'size=400MiB']);
    env.ok(t, ['copy', 'big', 'big2', '-s', 'tiny']);
    env.ok(t, ['delete', '--force', 'in1', 'big', 'big2']);
    for (const p of ['bt', 'tiny', 'plain']) env.ok(t, ['storage', 'delete', p]);
  });
}
