import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { checkEntries, cleanName, codecOf, listStored, listTar, sha256Of, storeCopy, type Entry } from '../../../lib/image/archive.js';
import { makeTar, makeTarGz } from '../../helpers/tarball.js';
import { validateMetadata } from '../../../lib/image/lxd.js';
import { findRecipe, loadRecipe, parseRecipe } from '../../../lib/image/recipe.js';

const unified = { roots: ['metadata.yaml', 'rootfs', 'templates'], rootfsPrefix: 'rootfs' };
const f = (name: string, type = '-', link?: string): Entry => ({ name, type, link });

test('entry names are normalised; absolute names and ".." are refused', (t) => {
  t.is(cleanName('./rootfs//etc/', 'x'), 'rootfs/etc');
  t.throws(() => cleanName('/etc/passwd', 'x'), { message: /absolute path/ });
  t.throws(() => cleanName('rootfs/../../x', 'x'), { message: /contains "\.\."/ });
});

test('a normal unified image passes', (t) => {
  const names = checkEntries(
    [
      f('metadata.yaml'),
      f('rootfs/', 'd'),
      f('rootfs/bin', 'l', 'usr/bin'),
      f('rootfs/usr/bin/', 'd'),
      f('rootfs/usr/bin/sh'),
      f('rootfs/usr/bin/bash', 'h', 'rootfs/usr/bin/sh'),
      f('rootfs/etc/resolv.conf', 'l', '../run/resolv.conf'),
      f('rootfs/etc/mtab', 'l', '/proc/self/mounts'),
      f('rootfs/dev/null', 'c'),
      f('rootfs/run/initctl', 'p'),
      f('templates/hostname.tpl'),
    ],
    'img',
    unified,
  );
  t.is(names.length, 11);
});

test('hostile entries are refused, each with its reason', (t) => {
  const bad: Array<[Entry[], RegExp]> = [
    [[f('rootfs/a', 'l', '../../etc')], /outside the root filesystem/],
    [[f('rootfs/x/y/a', 'l', '../../../..')], /outside the root filesystem/],
    [[f('rootfs/a', 'l', '/etc'), f('rootfs/a/passwd')], /under the symlink/],
    [[f('rootfs/a', 'h', '/etc/shadow')], /absolute path/],
    [[f('rootfs/a', 'h', 'rootfs/not-in-archive')], /outside the archive/],
    [[f('rootfs/sda', 'b')], /block device/],
    [[f('rootfs/etc/mem', 'c')], /character device outside \/dev/],
    [[f('evil')], /unexpected entry/],
    [[f('metadata.yaml', 'l', '/etc/passwd')], /symlink "metadata.yaml" outside the root filesystem/],
  ];
  for (const [entries, why] of bad) t.throws(() => checkEntries(entries, 'img', unified), { message: why }, JSON.stringify(entries));
  // In a split rootfs the root is the archive's top.
  t.throws(() => checkEntries([f('./a', 'l', '../x')], 'r', { rootfsPrefix: '' }), { message: /outside the root/ });
  t.notThrows(() => checkEntries([f('./', 'd'), f('./a', 'l', 'x/../y')], 'r', { rootfsPrefix: '' }));
});

test('metadata.yaml is checked', (t) => {
  t.is(validateMetadata({ architecture: 'x86_64', creation_date: 1, properties: { os: 'debian' } }, 'x').properties.os, 'debian');
  t.throws(() => validateMetadata(['a'], 'x'), { message: /mapping/ });
  t.throws(() => validateMetadata({ creation_date: 1 }, 'x'), { message: /architecture/ });
  t.throws(() => validateMetadata({ architecture: 'x86_64', creation_date: 'yesterday' }, 'x'), { message: /creation_date/ });
  t.throws(() => validateMetadata({ architecture: 'x86_64', templates: { '/etc/hostname': { template: '../../x' } } }, 'x'), { message: /templates/ });
  t.throws(() => validateMetadata({ architecture: 'x86_64', tslxc: { parent: 'nope' } }, 'x'), { message: /parent/ });
  t.throws(() => validateMetadata({ architecture: 'x86_64', tslxc: { stop_signal: 'kill' } }, 'x'), { message: /stop_signal/ });
});

test('from: recipes: the parent is named, source and from are exclusive; debian-ssh derives from debian', (t) => {
  const r = parseRecipe({ name: 'x', from: 'debian' }, 'r.yaml');
  t.deepEqual(r.source, { type: 'image', from: 'debian' });
  t.false(r.given.includes('init'));
  t.throws(() => parseRecipe({ name: 'x', from: 'debian', source: { type: 'busybox' } }, 'r.yaml'), { message: /either "from"/ });
  t.throws(() => parseRecipe({ name: 'x', from: '../x' }, 'r.yaml'), { message: /Invalid image name/ });
  const ssh = loadRecipe(findRecipe('debian-ssh')!);
  t.deepEqual(ssh.source, { type: 'image', from: 'debian' });
});

test('whiteouts (0/0 character devices) are allowed anywhere in a registry layer only', (t) => {
  const wh: Entry = { name: 'rootfs/etc/deleted', type: 'c', size: '0,0' };
  const disk: Entry = { name: 'rootfs/etc/sda', type: 'c', size: '8,0' };
  t.throws(() => checkEntries([f('metadata.yaml'), wh], 'img', unified), { message: /character device outside \/dev/ });
  t.is(checkEntries([f('metadata.yaml'), wh], 'img', { ...unified, whiteouts: true }).length, 2);
  t.throws(() => checkEntries([f('metadata.yaml'), disk], 'img', { ...unified, whiteouts: true }), { message: /character device outside \/dev/ });
  t.throws(() => checkEntries([{ ...wh, name: 'metadata.yaml/x' }], 'img', { ...unified, whiteouts: true }));
});

test('codecs are told by their first bytes', (t) => {
  t.is(codecOf(zlib.gzipSync(Buffer.from('x'))), 'gzip');
  t.is(codecOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  t.is(codecOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  t.is(codecOf(Buffer.from('BZh91AY')), 'bzip2');
  t.is(codecOf(makeTar([{ name: 'a', content: 'x' }])), 'none');
  t.is(codecOf(Buffer.alloc(0)), 'none');
});

test('the pass stores, hashes and lists the stored copy; bytes after the end marker are kept and hashed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-archive-'));
  try {
    const entries = [
      { name: 'metadata.yaml', content: 'a: 1\n' },
      { name: 'rootfs/', type: '5' as const },
      { name: 'rootfs/big', content: crypto.randomBytes(3 << 20) },
      { name: 'rootfs/l', type: '2' as const, link: 'big' },
    ];
    for (const [label, bytes] of [
      ['gzip', makeTarGz(entries)],
      ['plain, with bytes after its end', Buffer.concat([makeTar(entries), crypto.randomBytes(100_000)])],
    ] as const) {
      const src = path.join(dir, 'src');
      const dst = path.join(dir, `dst-${label.length}`);
      fs.writeFileSync(src, bytes);
      await storeCopy(src, dst, 'x');
      t.is(fs.statSync(dst).mode & 0o777, 0o600, label);
      const [sum, listed] = await Promise.all([sha256Of([dst]), listStored(dst, 'x')]);
      t.deepEqual(listed, listTar(src, 'x'), label);
      t.deepEqual(
        listed!.map((e) => e.name),
        ['metadata.yaml', 'rootfs/', 'rootfs/big', 'rootfs/l'],
      );
      t.is(sum, crypto.createHash('sha256').update(bytes).digest('hex'));
      t.true(fs.readFileSync(dst).equals(bytes));
    }
    // Several files hash as one stream (a split image's fingerprint).
    t.is(
      await sha256Of([path.join(dir, 'src'), path.join(dir, 'src')]),
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(dir, 'src')))
        .update(fs.readFileSync(path.join(dir, 'src')))
        .digest('hex'),
    );
    await t.throwsAsync(storeCopy(path.join(dir, 'src'), path.join(dir, 'src'), 'src'), { message: /Cannot read src/ });
    fs.writeFileSync(path.join(dir, 'bad'), makeTarGz(entries).subarray(0, 50_000));
    await t.throwsAsync(listStored(path.join(dir, 'bad'), 'bad.tar.gz'), {
      message: /Cannot read bad\.tar\.gz.*corrupt, truncated/,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
