import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { lxcfsBinary, lxcfsBindArgs, lxcfsViews, lxcfsFiles, lxcfsMounted, lxcfsState, LXCFS_VIEWS } from '../../../lib/host/lxcfs.js';
import type { Paths } from '../../../lib/state/paths.js';

function fakeRunDir(t: { teardown(fn: () => void): void }): Paths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-lxcfs-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: '', cgroupPrefix: 'x' };
}

test('TSLXC_LXCFS_BIN names the binary; a path that is not there means no lxcfs', (t) => {
  t.is(lxcfsBinary({ TSLXC_LXCFS_BIN: '/nonexistent/lxcfs' }), undefined);
  t.is(lxcfsBinary({ TSLXC_LXCFS_BIN: '/bin/sh' }), '/bin/sh');
});

test("an installation's lxcfs lives in its own run dir", (t) => {
  const p = fakeRunDir(t);
  t.deepEqual(lxcfsFiles(p), { dir: `${p.runDir}/lxcfs`, pid: `${p.runDir}/lxcfs.pid`, log: `${p.runDir}/lxcfs.log` });
});

test('a mount counts only when it is fuse.lxcfs at that dir', (t) => {
  t.true(
    lxcfsMounted('/r/lxcfs', [
      ['/r', 'ext4'],
      ['/r/lxcfs', 'ext4'],
      ['/r/lxcfs', 'fuse.lxcfs'],
    ]),
  );
  t.false(
    lxcfsMounted('/r/lxcfs', [
      ['/r/lxcfs', 'ext4'],
      ['/var/lib/lxcfs', 'fuse.lxcfs'],
    ]),
  );
});

test('without a binary, nothing mounted and no pid file: not installed', (t) => {
  const p = fakeRunDir(t);
  const was = process.env.TSLXC_LXCFS_BIN;
  process.env.TSLXC_LXCFS_BIN = '/nonexistent/lxcfs';
  t.teardown(() => (was === undefined ? delete process.env.TSLXC_LXCFS_BIN : (process.env.TSLXC_LXCFS_BIN = was)));
  t.is(lxcfsState(p), 'not installed');
  process.env.TSLXC_LXCFS_BIN = '/bin/sh';
  t.is(lxcfsState(p), 'stopped');
});

test('the binds are the views that lxcfs serves, each at its own path', (t) => {
  const p = fakeRunDir(t);
  const dir = lxcfsFiles(p).dir;
  for (const v of LXCFS_VIEWS.filter((v) => v !== '/proc/swaps')) {
    fs.mkdirSync(path.dirname(`${dir}${v}`), { recursive: true });
    fs.writeFileSync(`${dir}${v}`, '');
  }
  const args = lxcfsBindArgs(p, lxcfsViews(p));
  t.is(args.length, 2 * (LXCFS_VIEWS.length - 1));
  t.true(args.includes(`${dir}/proc/meminfo:/proc/meminfo:optional`));
  t.true(args.includes(`${dir}/sys/devices/system/cpu/online:/sys/devices/system/cpu/online:optional`));
  t.false(args.some((a) => a.includes('swaps')));
});
