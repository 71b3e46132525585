import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { mountsOf } from '../../helpers/leftovers.js';
import { hostAccess, writeRootFiles } from '../../../lib/storage/instance.js';
import { helperPath } from '../../../lib/state/helper.js';

/**
 * Files written into a stopped overlay container (identity files at create, copy, rename): one
 * helper run for all of them (`file --write-many`), inside the merged view, never on the host.
 */
if (requireRoot(test)) {
  const env = new TestEnv('rootfiles');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  test.serial('several files in one helper run: contents, modes, parent dirs, through the merged view', (t) => {
    env.ok(t, ['create', 'busybox', 'w1']); // the default pool: overlay
    const acc = hostAccess(env.ctx, 'w1');
    t.truthy(acc.helperArgs, 'an overlay root is reached through the helper');
    // A symlink in the container's upper layer that points at a host path: followed inside the root.
    fs.symlinkSync('/tmp', path.join(acc.root, 'etc', 'to-tmp'));
    const marker = `tslxc-rootfiles-${process.pid}`;
    writeRootFiles(env.ctx, 'w1', [
      { path: '/etc/one', content: 'first\n' },
      { path: '/srv/deep/two', content: 'x'.repeat(100_000), mode: 0o600 },
      { path: '/etc/empty', content: '' },
      { path: `/etc/to-tmp/${marker}`, content: 'inside\n' },
    ]);
    t.is(fs.readFileSync(path.join(acc.root, 'etc/one'), 'utf8'), 'first\n');
    t.is(fs.readFileSync(path.join(acc.root, 'srv/deep/two'), 'utf8').length, 100_000);
    t.is(fs.statSync(path.join(acc.root, 'srv/deep/two')).mode & 0o7777, 0o600);
    t.is(fs.readFileSync(path.join(acc.root, 'etc/empty'), 'utf8'), '');
    t.false(fs.existsSync(`/tmp/${marker}`), 'nothing written on the host through the symlink');
    t.is(fs.readFileSync(path.join(acc.root, 'tmp', marker), 'utf8'), 'inside\n');
    t.deepEqual(mountsOf(env), []);
  });

  test.serial('a malformed record writes nothing at all; a path with a newline is refused', (t) => {
    const acc = hostAccess(env.ctx, 'w1');
    for (const input of ['644 6 /etc/a\nfirst\n644 99 /etc/b\nshort', '644 6 /etc/a\nfirst\nno header', '644 6 relative\nfirst\n', '9999 1 /etc/a\nx']) {
      const r = spawnSync(helperPath(), ['file', ...acc.helperArgs!, '--write-many', '--mkdir'], { input, encoding: 'utf8' });
      t.not(r.status, 0, input);
      t.regex(r.stderr, /write-many|absolute/);
      t.false(fs.existsSync(path.join(acc.root, 'etc/a')), 'not even the good record before the bad one');
    }
    t.throws(() => writeRootFiles(env.ctx, 'w1', [{ path: '/etc/x\n644 1 /etc/y', content: 'z' }]), { message: /without newlines/ });
    t.false(fs.existsSync(path.join(acc.root, 'etc/y')));
    env.ok(t, ['delete', 'w1']);
  });
}
