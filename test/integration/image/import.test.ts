import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { makeTarGz } from '../../helpers/tarball.js';

/**
 * An import stores the tarball (checked in one streaming pass) and unpacks its rootfs where a
 * container needs it: on a dir pool into the container's root, else into the store once, under a
 * lock, into a temp dir renamed into place.
 */
if (requireRoot(test)) {
  const env = new TestEnv('imp');
  let tarball = '';
  let fp = '';
  const imageDir = (e: TestEnv) => `${e.paths.stateDir}/images/${fp}`;
  const info = (e: TestEnv, ref: string) => {
    const r = e.cli(['image', 'info', ref, '-f', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { unpacked: boolean; size: number; fingerprint: string };
  };
  const leftovers = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.'));

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    tarball = path.join(env.root, 'busybox.tar.gz');
    const x = env.cli(['image', 'export', 'busybox', tarball]);
    if (x.code !== 0) throw new Error(x.stderr);
    fp = crypto.createHash('sha256').update(fs.readFileSync(tarball)).digest('hex');
  });
  test.serial.after.always(() => env.cleanup());

  test.serial('import stores the tarball without unpacking it; an export in its own format gives it back', async (t) => {
    const e = new TestEnv('imp1');
    try {
      t.regex(e.ok(t, ['image', 'import', tarball, '--alias', 'bb']), new RegExp(fp));
      t.deepEqual(fs.readdirSync(imageDir(e)).sort(), ['metadata.yaml', 'original']);
      t.true(fs.readFileSync(path.join(imageDir(e), 'original', 'meta.tar.gz')).equals(fs.readFileSync(tarball)));
      const i = info(e, 'bb');
      t.false(i.unpacked);
      t.true(i.size >= fs.statSync(tarball).size && i.size < fs.statSync(tarball).size + 64 * 1024, `${i.size}: the tarball, not a tree`);
      const back = path.join(e.root, 'back.tar.gz');
      e.ok(t, ['image', 'export', 'bb', back]);
      t.true(fs.readFileSync(back).equals(fs.readFileSync(tarball)));
      t.false(fs.existsSync(path.join(imageDir(e), 'rootfs')));
      t.deepEqual(leftovers(`${e.paths.stateDir}/images`), []);
      // An edit drops the original files, so it unpacks the tree first.
      e.ok(t, ['image', 'edit', 'bb'], { input: e.ok(t, ['image', 'show', 'bb']).replace(/description: .*/, 'description: edited') });
      t.true(info(e, 'bb').unpacked);
      t.true(fs.existsSync(path.join(imageDir(e), 'rootfs/bin/busybox')));
    } finally {
      await e.cleanup();
    }
  });

  test.serial('a dir pool unpacks the archive into each container, not the store; an overlay pool unpacks it into the store once', async (t) => {
    const e = new TestEnv('imp2');
    try {
      e.ok(t, ['image', 'import', tarball, '--alias', 'bb']);
      const packedSize = info(e, 'bb').size;
      // A dir pool: each container's root is a whole copy of the tree, unpacked from the archive.
      e.ok(t, ['storage', 'create', 'plain', 'dir', 'spare_roots=false']);
      e.ok(t, ['create', 'bb', 'c1', '--storage', 'plain']);
      t.true(fs.existsSync(`${e.paths.stateDir}/containers/c1/rootfs/bin/busybox`));
      t.deepEqual(fs.readdirSync(`${e.paths.stateDir}/containers/c1`).sort(), ['config.yaml', 'rootfs', 'storage.yaml']);
      t.false(fs.existsSync(path.join(imageDir(e), 'rootfs')), 'the store keeps the archive only');
      t.false(info(e, 'bb').unpacked);
      t.is(info(e, 'bb').size, packedSize);
      // An overlay pool's lower layer is the store's tree: unpacked there, once.
      e.ok(t, ['storage', 'create', 'ov', 'overlay']);
      e.ok(t, ['create', 'bb', 'o1', '--storage', 'ov']);
      t.true(fs.existsSync(path.join(imageDir(e), 'rootfs/bin/busybox')));
      const i = info(e, 'bb');
      t.true(i.unpacked);
      t.true(i.size > packedSize, 'the size counts the tree once it is there');
      const inode = fs.statSync(path.join(imageDir(e), 'rootfs')).ino;
      e.ok(t, ['create', 'bb', 'o2', '--storage', 'ov']);
      t.is(fs.statSync(path.join(imageDir(e), 'rootfs')).ino, inode);
      t.is(info(e, 'bb').size, i.size);
      // Once the tree is there, a dir pool copies it as for any image.
      e.ok(t, ['create', 'bb', 'c2', '--storage', 'plain']);
      t.true(fs.existsSync(`${e.paths.stateDir}/containers/c2/rootfs/bin/busybox`));
      t.deepEqual(leftovers(imageDir(e)), []);
      // Exported in another format it is packed from the tree, and imports as the same image.
      const zst = path.join(e.root, 'bb.tar.zst');
      e.ok(t, ['image', 'export', 'bb', zst, '--compression', 'zstd']);
      const other = new TestEnv('imp2b');
      try {
        other.ok(t, ['image', 'import', zst, '--alias', 'z']);
        other.ok(t, ['create', 'z', 'c1']);
        t.true(fs.existsSync(`${other.paths.stateDir}/images/${info(other, 'z').fingerprint}/rootfs/bin/busybox`));
      } finally {
        await other.cleanup();
      }
    } finally {
      await e.cleanup();
    }
  });

  test.serial('concurrent first creates unpack once; what a killed unpack left is removed', async (t) => {
    const e = new TestEnv('imp3');
    try {
      e.ok(t, ['image', 'import', tarball, '--alias', 'bb']);
      // A dead unpacker's temp dir (its PID is gone), as a crash mid-unpack leaves it.
      const dead = path.join(imageDir(e), '.unpack-4194303');
      fs.mkdirSync(path.join(dead, 'rootfs/bin'), { recursive: true });
      fs.writeFileSync(path.join(dead, 'rootfs/bin/half'), 'x');
      e.ok(t, ['storage', 'create', 'ov', 'overlay']);
      const names = ['c1', 'c2', 'c3', 'c4'];
      const results = await Promise.all(names.map((n) => e.cliAsync(['create', 'bb', n, '--storage', 'ov'])));
      for (const r of results) t.is(r.code, 0, r.stderr);
      for (const n of names) t.true(fs.existsSync(`${e.paths.stateDir}/containers/${n}/overlay-work`), n);
      t.false(fs.existsSync(path.join(imageDir(e), 'rootfs/bin/half')));
      t.deepEqual(leftovers(imageDir(e)), []);
      t.true(info(e, 'bb').unpacked);
    } finally {
      await e.cleanup();
    }
  });

  test.serial('a hostile entry after a large file is refused in the streaming pass: nothing stored, no temp dirs', async (t) => {
    const e = new TestEnv('imp4');
    try {
      const file = path.join(e.root, 'evil.tar.gz');
      fs.writeFileSync(
        file,
        makeTarGz([
          { name: 'metadata.yaml', content: 'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: evil\n' },
          { name: 'rootfs/', type: '5' },
          { name: 'rootfs/big', content: crypto.randomBytes(3 << 20) },
          { name: 'rootfs/dev/', type: '5' },
          { name: 'rootfs/dev/sda', type: '4', major: 8, minor: 0 },
        ]),
      );
      const r = e.cli(['image', 'import', file, '--alias', 'evil']);
      t.not(r.code, 0);
      t.regex(r.stderr, /block device/);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      const dir = `${e.paths.stateDir}/images`;
      t.deepEqual(fs.existsSync(dir) ? fs.readdirSync(dir) : [], []);
    } finally {
      await e.cleanup();
    }
  });
}
