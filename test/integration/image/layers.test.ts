import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * A child image is a layer: it stores only its difference from its parent (new and changed files,
 * whiteouts, opaque dirs), and every way of using it sees the same whole tree: containers on
 * overlay (layers stacked), btrfs (the parent's subvolume snapshotted, the layer applied) and dir
 * (the merged view copied), and an export (flattened, LXD has no layers) that imports back whole.
 */
if (requireRoot(test)) {
  const env = new TestEnv('layers');
  const info = (ref: string) => {
    const r = env.cli(['image', 'info', ref, '--format', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  const imageRoot = (ref: string) => path.join(env.paths.stateDir, 'images', info(ref).fingerprint, 'rootfs');
  const recipe = [
    'name: bb-layer',
    'from: busybox',
    'files:',
    '  - path: /etc/added',
    '    content: "added\\n"',
    'commands:',
    '  - echo changed > /etc/inittab.local',
    '  - echo replaced > /etc/profile',
    '  - rm /bin/vi',
    '  - rm -rf /usr && mkdir -p /usr/only && echo only > /usr/only/file',
  ].join('\n');

  /** Every entry of a whole tree: type, mode, owner, size, link target or content hash. */
  const manifest = (root: string): string[] => {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const e of fs.readdirSync(path.join(root, rel)).sort()) {
        const r = path.join(rel, e);
        const st = fs.lstatSync(path.join(root, r));
        const kind = st.isDirectory()
          ? 'd'
          : st.isSymbolicLink()
            ? `l>${fs.readlinkSync(path.join(root, r))}`
            : st.isFile()
              ? `f:${crypto
                  .createHash('sha256')
                  .update(fs.readFileSync(path.join(root, r)))
                  .digest('hex')
                  .slice(0, 16)}`
              : `o:${st.rdev}`;
        out.push(`${r} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
        if (st.isDirectory()) walk(r);
      }
    };
    walk('');
    return out;
  };
  const overlayXattrs = (dir: string) =>
    spawnSync('getfattr', ['-R', '-P', '--absolute-names', '-m', '^trusted\\.overlay\\.', '-d', dir], { encoding: 'utf8' }).stdout.trim();

  test.before(() => {
    for (const args of [
      ['image', 'build', 'busybox'],
      ['storage', 'create', 'plain', 'dir'],
      ['storage', 'create', 'fs', 'btrfs', 'size=512MiB'],
    ]) {
      const r = env.cli(args);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    fs.writeFileSync(path.join(env.root, 'bb-layer.yaml'), recipe);
  });
  leftoverHooks(test, env);

  test.serial('a from: recipe stores only its difference: changes, whiteouts, an opaque dir', (t) => {
    env.ok(t, ['image', 'build', path.join(env.root, 'bb-layer.yaml')]);
    const child = info('bb-layer');
    const parent = info('busybox');
    t.is(child.stored, 'layer');
    t.is(child.parent.fingerprint, parent.fingerprint);
    t.true(child.size < parent.size / 10, `the layer (${child.size} B) is a fraction of its parent (${parent.size} B)`);
    const layer = imageRoot('bb-layer');
    t.false(fs.existsSync(path.join(layer, 'bin/busybox')), 'what the child did not change is not in its layer');
    t.is(fs.readFileSync(path.join(layer, 'etc/added'), 'utf8'), 'added\n');
    const wh = fs.lstatSync(path.join(layer, 'bin/vi'));
    t.true(wh.isCharacterDevice() && wh.rdev === 0, 'a deleted file is a whiteout');
    // Only the opaque marker is left of overlayfs's xattrs (no origin or impure bookkeeping).
    t.deepEqual(
      overlayXattrs(layer)
        .split('\n')
        .filter((l) => l.startsWith('trusted.')),
      ['trusted.overlay.opaque="y"'],
    );
    t.regex(overlayXattrs(layer), /# file: .*\/usr\n/);
    t.regex(env.ok(t, ['image', 'tree']), /bb-layer.*\+\d/);
    t.regex(env.ok(t, ['image', 'info', 'bb-layer']), /its own layer/);
  });

  for (const pool of ['default', 'plain', 'fs']) {
    test.serial(
      `a container of the child on the ${pool === 'default' ? 'overlay' : pool === 'plain' ? 'dir' : 'btrfs'} pool boots and sees the merged tree`,
      (t) => {
        const name = `c-${pool}`;
        env.ok(t, ['launch', 'bb-layer', name, '--storage', pool]);
        const sh = (cmd: string) => env.cli(['exec', name, '--', 'sh', '-c', cmd]);
        t.is(sh('cat /etc/added /etc/profile').stdout, 'added\nreplaced\n');
        t.not(sh('test -e /bin/vi').code, 0, 'the deleted file is gone');
        t.is(sh('ls /usr').stdout, 'only\n', 'the replaced dir holds only its new contents');
        t.is(sh('/bin/busybox true && echo base').stdout, 'base\n', "the parent's files are there");
      },
    );
  }

  test.serial("on btrfs the child image's subvolume is a snapshot of its parent's, with the layer applied", (t) => {
    const mount = path.join(env.paths.stateDir, 'storage-pools', 'fs', 'images');
    const child = path.join(mount, info('bb-layer').fingerprint);
    const parent = path.join(mount, info('busybox').fingerprint);
    const show = (d: string) => spawnSync('btrfs', ['subvolume', 'show', d], { encoding: 'utf8' }).stdout;
    const uuid = (d: string) => /^\s*UUID:\s*(\S+)/m.exec(show(d))?.[1];
    t.is(/Parent UUID:\s*(\S+)/.exec(show(child))?.[1], uuid(parent));
    t.false(fs.existsSync(path.join(child, 'bin/vi')));
    t.is(overlayXattrs(child), '', 'no overlay marker is left in a whole tree');
  });

  test.serial('export of a child is its whole flattened tree; the import is whole and the same', (t) => {
    const out = path.join(env.root, 'bb-layer.tar.gz');
    env.ok(t, ['image', 'export', 'bb-layer', out]);
    const list = spawnSync('tar', ['-tvzf', out], { encoding: 'utf8' }).stdout;
    t.regex(list, /rootfs\/bin\/busybox/);
    t.notRegex(list, /^c.* 0,0 .*rootfs\/bin\/vi/m, 'no whiteout in an LXD tarball');
    t.notRegex(spawnSync('tar', ['-xzOf', out, 'metadata.yaml'], { encoding: 'utf8' }).stdout, /layer:/);
    env.ok(t, ['image', 'import', out, '--alias', 'flat']);
    const flat = info('flat');
    t.is(flat.stored, 'whole');
    // The import keeps the tarball; the first create unpacks the tree.
    env.ok(t, ['create', 'flat', 'flat-c']);
    env.ok(t, ['delete', 'flat-c']);
    const btrfsChild = path.join(env.paths.stateDir, 'storage-pools', 'fs', 'images', info('bb-layer').fingerprint);
    t.deepEqual(manifest(imageRoot('flat')), manifest(btrfsChild));
    t.is(overlayXattrs(imageRoot('flat')), '');
    // And the round trip keeps its fingerprint.
    const again = path.join(env.root, 'again.tar.gz');
    env.ok(t, ['image', 'export', 'flat', again]);
    t.is(crypto.createHash('sha256').update(fs.readFileSync(again)).digest('hex'), flat.fingerprint);
  });

  for (const pool of ['default', 'plain']) {
    test.serial(`publish from the ${pool === 'default' ? 'overlay' : 'dir'} pool stores what the container changed, as a layer`, (t) => {
      const name = `c-${pool}`;
      env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo mine > /etc/mine && rm /etc/added'], {});
      env.ok(t, ['stop', name, '--force']);
      env.ok(t, ['publish', name, '--alias', `pub-${pool}`]);
      const img = info(`pub-${pool}`);
      t.is(img.stored, 'layer');
      t.is(img.parent.fingerprint, info('bb-layer').fingerprint);
      const layer = imageRoot(`pub-${pool}`);
      t.is(fs.readFileSync(path.join(layer, 'etc/mine'), 'utf8'), 'mine\n');
      t.true(fs.lstatSync(path.join(layer, 'etc/added')).isCharacterDevice());
      t.false(fs.existsSync(path.join(layer, 'bin/busybox')));
      t.true(img.size < info('busybox').size / 10);
      // The container's changes never reach the layers it stacks on: images stay read-only.
      t.is(fs.readFileSync(path.join(imageRoot('bb-layer'), 'etc/added'), 'utf8'), 'added\n');
      t.false(fs.existsSync(path.join(imageRoot('bb-layer'), 'etc/mine')));
      env.ok(t, ['launch', `pub-${pool}`, `${name}-2`, '--storage', 'fs']);
      t.is(
        env.cli(['exec', `${name}-2`, '--', 'sh', '-c', 'cat /etc/mine; test -e /etc/added || echo gone; cat /etc/profile']).stdout,
        'mine\ngone\nreplaced\n',
      );
      env.ok(t, ['delete', `${name}-2`, '--force']);
    });
  }

  test.serial('a parent with children cannot be deleted', (t) => {
    const r = env.cli(['image', 'delete', 'busybox']);
    t.not(r.code, 0);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, /bb-layer/);
    t.true(fs.existsSync(imageRoot('busybox')));
  });

  test.serial('a build killed half-way leaves no layer; the next one sweeps it and succeeds', async (t) => {
    const file = path.join(env.root, 'slow.yaml');
    fs.writeFileSync(file, 'name: slow\nfrom: busybox\ncommands:\n  - echo partial > /etc/partial\n  - touch /tmp/slow-started-marker && sleep 60\n');
    const child = spawn(process.execPath, [cliPath, 'image', 'build', file], { env: env.env, stdio: 'ignore', detached: true });
    const builds = path.join(env.paths.cacheDir, 'builds');
    const started = Date.now();
    let tmp: string | undefined;
    while (!tmp && Date.now() - started < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      tmp = fs
        .readdirSync(builds)
        .find((d) => d.startsWith('.tmp-') && d.endsWith(`-${child.pid}`) && fs.existsSync(path.join(builds, d, 'rootfs/tmp/slow-started-marker')));
    }
    t.truthy(tmp, 'the build got to its slow command');
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    t.false(env.cli(['image', 'list', '--format', 'json']).stdout.includes('"slow'), 'no image');
    t.deepEqual(
      fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((d) => d.startsWith('.tmp-')),
      [],
    );
    // The recipe without its sleep is another key: build the killed one's again to see the sweep.
    fs.writeFileSync(file, 'name: slow\nfrom: busybox\ncommands:\n  - echo partial > /etc/partial\n  - touch /tmp/slow-started-marker && sleep 0\n');
    env.ok(t, ['image', 'build', file]);
    fs.writeFileSync(file, 'name: slow\nfrom: busybox\ncommands:\n  - echo partial > /etc/partial\n  - touch /tmp/slow-started-marker && sleep 60\n');
    t.true(fs.existsSync(path.join(builds, tmp!)), "the dead build's temp dir is there until a build of the same recipe");
    const again = spawn(process.execPath, [cliPath, 'image', 'build', file], { env: env.env, stdio: 'ignore', detached: true });
    const t2 = Date.now();
    while (fs.existsSync(path.join(builds, tmp!)) && Date.now() - t2 < 30_000) await new Promise((r) => setTimeout(r, 100));
    t.false(fs.existsSync(path.join(builds, tmp!)), 'swept by the next build of the recipe');
    process.kill(-again.pid!, 'SIGKILL');
    await new Promise((r) => again.once('exit', r));
    for (const d of fs.readdirSync(builds).filter((x) => x.endsWith(`-${again.pid}`))) fs.rmSync(path.join(builds, d), { recursive: true, force: true });
  });
}
