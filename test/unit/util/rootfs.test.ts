import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { resolveInRoot, writeFileInRoot, mkdirInRoot } from '../../../lib/util/rootfs.js';

function tree() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-rootfs-'));
  fs.mkdirSync(path.join(root, 'etc'));
  return root;
}

test('absolute and relative symlinks resolve inside the root', (t) => {
  const root = tree();
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-outside-'));
  fs.symlinkSync('/etc', path.join(root, 'dev'));
  fs.symlinkSync('../../../../..' + outside, path.join(root, 'up'));
  fs.symlinkSync(outside, path.join(root, 'abs'));
  t.is(resolveInRoot(root, '/dev/x'), path.join(root, 'etc/x'));
  t.true(resolveInRoot(root, '/up/x').startsWith(root + '/'));
  t.is(resolveInRoot(root, '/abs/x'), path.join(root, outside, 'x'));
  t.is(resolveInRoot(root, '/../../../etc/passwd'), path.join(root, 'etc/passwd'));
  fs.rmSync(root, { recursive: true });
  fs.rmSync(outside, { recursive: true });
});

test('writeFileInRoot never writes through a symlink to the host', (t) => {
  const root = tree();
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-outside-'));
  const victim = path.join(outside, 'victim');
  fs.writeFileSync(victim, 'host data');
  fs.symlinkSync(victim, path.join(root, 'etc/hostname'));
  writeFileInRoot(root, '/etc/hostname', 'c1\n');
  t.is(fs.readFileSync(victim, 'utf8'), 'host data');
  // The symlink pointed at an absolute path: resolved inside the root, that file is written.
  t.is(fs.readFileSync(resolveInRoot(root, '/etc/hostname'), 'utf8'), 'c1\n');
  fs.symlinkSync(outside, path.join(root, 'evil'));
  mkdirInRoot(root, '/evil/sub');
  t.false(fs.existsSync(path.join(outside, 'sub')));
  fs.rmSync(root, { recursive: true });
  fs.rmSync(outside, { recursive: true });
});

test('symlink loops are refused', (t) => {
  const root = tree();
  fs.symlinkSync('/b', path.join(root, 'a'));
  fs.symlinkSync('/a', path.join(root, 'b'));
  t.throws(() => resolveInRoot(root, '/a/x'), { message: /too many levels/ });
  fs.rmSync(root, { recursive: true });
});
