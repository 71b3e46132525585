import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { mountsOf } from '../../helpers/leftovers.js';

/** Storage pools: overlay (the default), dir, btrfs on a loop file. */
if (requireRoot(test)) {
  const env = new TestEnv('st');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);
  const info = (pool: string) =>
    JSON.parse(
      env.ok(
        {
          fail: (m: string) => {
            throw new Error(m);
          },
        } as never,
        ['storage', 'info', pool, '--format', 'json'],
      ),
    );

  test.serial('the default pool is made on first use with overlay; the root is an overlay inside the container only', (t) => {
    env.ok(t, ['launch', 'busybox', 'ov1']);
    const pools = JSON.parse(env.ok(t, ['storage', 'list', '--format', 'json']));
    t.deepEqual(
      pools.map((p: { name: string; driver: string }) => [p.name, p.driver]),
      [['default', 'overlay']],
    );
    t.regex(env.ok(t, ['exec', 'ov1', '--', 'cat', '/proc/self/mounts']), /^overlay \/ overlay /m);
    t.deepEqual(mountsOf(env), [], 'no overlay mount on the host');
    // The image is untouched by the container's writes; the upper layer holds them.
    env.ok(t, ['exec', 'ov1', '--', 'sh', '-c', 'echo mine > /etc/motd-test && rm /bin/vi']);
    const st = JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((c: { name: string }) => c.name === 'ov1');
    t.truthy(st);
    t.is(fs.readFileSync(`${env.paths.stateDir}/containers/ov1/rootfs/etc/motd-test`, 'utf8'), 'mine\n');
    t.deepEqual(info('default').used_by, ['ov1']);
    const del = env.cli(['storage', 'delete', 'default']);
    t.is(del.code, 1);
    t.regex(del.stderr, /in use by ov1/);
  });

  test.serial('a stopped overlay container: file push/pull and rename see the merged view', (t) => {
    env.ok(t, ['stop', 'ov1']);
    const src = `${env.root}/p.txt`;
    fs.writeFileSync(src, 'pushed\n');
    env.ok(t, ['file', 'push', src, 'ov1/etc/pushed.txt']);
    env.ok(t, ['file', 'pull', 'ov1/etc/passwd', `${env.root}/passwd`]); // from the lower layer
    t.regex(fs.readFileSync(`${env.root}/passwd`, 'utf8'), /^root:/);
    t.not(env.cli(['file', 'pull', 'ov1/bin/vi', `${env.root}/vi`]).code, 0, 'a whited-out file is gone');
    env.ok(t, ['rename', 'ov1', 'ov2']);
    env.ok(t, ['start', 'ov2']);
    t.is(env.ok(t, ['exec', 'ov2', '--', 'cat', '/etc/hostname']), 'ov2\n');
    t.is(env.ok(t, ['exec', 'ov2', '--', 'cat', '/etc/pushed.txt']), 'pushed\n');
    t.deepEqual(mountsOf(env), []);
    env.ok(t, ['delete', '--force', 'ov2']);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/ov2`));
  });

  test.serial('a dir pool copies the image', (t) => {
    env.ok(t, ['storage', 'create', 'plain', 'dir']);
    env.ok(t, ['launch', 'busybox', 'd1', '-s', 'plain']);
    t.true(fs.existsSync(`${env.paths.stateDir}/containers/d1/rootfs/bin/busybox`));
    t.notRegex(env.ok(t, ['exec', 'd1', '--', 'cat', '/proc/self/mounts']), /^overlay \//m);
    t.is(env.cli(['launch', 'busybox', 'x1', '-s', 'nosuch']).code, 1);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/x1`));
    env.ok(t, ['delete', '--force', 'd1']);
    env.ok(t, ['storage', 'delete', 'plain']);
    t.false(fs.existsSync(`${env.paths.stateDir}/storage-pools/plain.yaml`));
  });

  test.serial('a btrfs pool on a loop file: containers are snapshots; delete unmounts and frees the loop', (t) => {
    env.ok(t, ['storage', 'create', 'bt', 'btrfs', 'size=300MiB']);
    const i = info('bt');
    t.is(i.driver, 'btrfs');
    t.true(i.usage.size > 200 * 1024 * 1024);
    env.ok(t, ['launch', 'busybox', 'b1', '-s', 'bt']);
    env.ok(t, ['launch', 'busybox', 'b2', '-s', 'bt']);
    t.is(env.ok(t, ['exec', 'b2', '--', 'hostname']).trim(), 'b2');
    const sub = spawnSync('btrfs', ['subvolume', 'list', `${env.paths.stateDir}/storage-pools/bt`], { encoding: 'utf8' }).stdout;
    t.regex(sub, /containers\/b1/);
    t.regex(sub, /images\//);
    t.regex(env.cli(['storage', 'delete', 'bt']).stderr, /in use by b1, b2/);
    env.ok(t, ['storage', 'set', 'bt', 'size=400MiB']);
    t.true(info('bt').usage.size > 350 * 1024 * 1024);
    env.ok(t, ['delete', '--force', 'b1', 'b2']);
    env.ok(t, ['storage', 'delete', 'bt']);
    t.deepEqual(mountsOf(env), []);
    t.false(fs.existsSync(`${env.paths.stateDir}/storage-pools/bt.img`));
  });
}
