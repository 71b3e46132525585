import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Image } from '../../../lib/image/store.js';
import { rootKeysInImage } from '../../../lib/ssh/authorized.js';

/** A whole image with root's passwd entry and, optionally, its authorized_keys. */
function image(t: { teardown(fn: () => void): void }, keys?: string, opts: { layer?: boolean } = {}): Image {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-authorized-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'root'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'daemon:x:1:1::/usr/sbin:/bin/false\nroot:x:0:0:root:/root:/bin/bash\n');
  if (keys !== undefined) {
    fs.mkdirSync(path.join(rootfs, 'root/.ssh'), { mode: 0o700 });
    fs.writeFileSync(path.join(rootfs, 'root/.ssh/authorized_keys'), keys);
  }
  return { fingerprint: 'a'.repeat(64), dir, rootfs, aliases: [], metadata: { tslxc: opts.layer ? { layer: true } : {} } } as unknown as Image;
}

const root = { user: 'root', uid: 0, gid: 0, home: '/root' };

test('at create, root and its authorized_keys are read from the image', (t) => {
  t.deepEqual(rootKeysInImage(image(t, 'ssh-ed25519 AAAA mine\n'), ['/etc/hostname', '/etc/hosts']), { u: root, current: 'ssh-ed25519 AAAA mine\n' });
  t.deepEqual(rootKeysInImage(image(t), []), { u: root, current: '' }, 'none yet: an empty file');
});

test('the helper reads them instead when the create wrote over them, or the image is layered', (t) => {
  t.is(rootKeysInImage(image(t, ''), ['/etc/passwd']), undefined);
  t.is(rootKeysInImage(image(t, ''), ['/etc//./passwd']), undefined, 'however the path is spelt');
  t.is(rootKeysInImage(image(t, ''), ['/root/.ssh/authorized_keys']), undefined);
  t.is(rootKeysInImage(image(t, ''), ['/root']), undefined);
  const linked = image(t, '');
  fs.symlinkSync('passwd', path.join(linked.rootfs, 'etc/hostname'));
  t.is(rootKeysInImage(linked, ['/etc/hostname']), undefined, 'a written file that is a symlink to /etc/passwd');
  t.is(rootKeysInImage(image(t, '', { layer: true }), []), undefined);
});

test('an image cannot make the read block or leave its root', (t) => {
  const fifo = image(t);
  fs.mkdirSync(path.join(fifo.rootfs, 'root/.ssh'));
  t.is(spawnSync('mkfifo', [path.join(fifo.rootfs, 'root/.ssh/authorized_keys')]).status, 0);
  t.is(rootKeysInImage(fifo, []), undefined, 'a FIFO is left to the helper');

  // root's home, and its .ssh, as absolute symlinks: resolved inside the image, never the host's.
  const out = image(t);
  fs.rmSync(path.join(out.rootfs, 'root'), { recursive: true });
  fs.symlinkSync('/etc', path.join(out.rootfs, 'root'));
  fs.mkdirSync(path.join(out.rootfs, 'etc/.ssh'));
  fs.writeFileSync(path.join(out.rootfs, 'etc/.ssh/authorized_keys'), 'inside\n');
  t.deepEqual(rootKeysInImage(out, []), { u: root, current: 'inside\n' });
});
