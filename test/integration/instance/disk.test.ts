import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { mountsOf } from '../../helpers/leftovers.js';

/** Host-path disk devices, bound by the helper inside the container's mount namespace. */
if (requireRoot(test)) {
  const env = new TestEnv('disk');
  test.before(() => {
    fs.mkdirSync(`${env.root}/share`);
    fs.writeFileSync(`${env.root}/share/f`, 'hello\n');
    fs.mkdirSync(`${env.root}/rw`);
  });
  test.serial.after.always(async () => {
    await env.cleanup();
  });

  test.serial('a host path disk is bound read-only or read-write at its path', (t) => {
    env.ok(t, ['create', 'busybox', 'dk1']);
    env.ok(t, ['config', 'device', 'add', 'dk1', 'src', 'disk', `source=${env.root}/share`, 'path=/mnt/share', 'readonly=true']);
    // shift=true: the container's root (unprivileged by default) writes host root's dir as root.
    env.ok(t, ['config', 'device', 'add', 'dk1', 'data', 'disk', `source=${env.root}/rw`, 'path=/data', 'shift=true']);
    env.ok(t, ['start', 'dk1']);
    t.is(env.ok(t, ['exec', 'dk1', '--', 'cat', '/mnt/share/f']), 'hello\n');
    const w = env.cli(['exec', 'dk1', '--', 'sh', '-c', 'echo x > /mnt/share/g']);
    t.not(w.code, 0);
    t.regex(w.stderr, /Read-only/);
    env.ok(t, ['exec', 'dk1', '--', 'sh', '-c', 'echo from-inside > /data/out']);
    t.is(fs.readFileSync(`${env.root}/rw/out`, 'utf8'), 'from-inside\n');
    t.is(fs.statSync(`${env.root}/rw/out`).uid, 0, "shifted: the file is host root's");
    t.deepEqual(
      mountsOf(env).filter((l) => l.includes('/share') || l.includes('/rw')),
      [],
      'no bind on the host',
    );
    env.ok(t, ['stop', '--force', 'dk1']);
  });

  test.serial('a symlink in the image cannot redirect a disk bind onto the host', (t) => {
    env.ok(t, ['create', 'busybox', 'dk2']);
    const victim = `${env.root}/victim`;
    fs.mkdirSync(victim);
    fs.writeFileSync(`${victim}/keep`, 'host\n');
    // Plant /mnt -> the host victim dir in the container's root (written from inside, as an image could).
    env.ok(t, ['start', 'dk2']);
    env.ok(t, ['exec', 'dk2', '--', 'sh', '-c', `rm -rf /mnt && ln -s ${victim} /mnt`]);
    env.ok(t, ['stop', '--force', 'dk2']);
    env.ok(t, ['config', 'device', 'add', 'dk2', 'src', 'disk', `source=${env.root}/share`, 'path=/mnt/share']);
    // The link resolves inside the root, where its target does not exist: the start fails closed
    // with one line (or, were the target there, the bind would land inside the root).
    const r = env.cli(['start', 'dk2']);
    if (r.code === 0) t.is(env.ok(t, ['exec', 'dk2', '--', 'cat', '/mnt/share/f']), 'hello\n');
    else t.regex(r.stderr, /^Error: Cannot start "dk2": .*mnt\/share.*\n$/);
    t.false(fs.existsSync(`${victim}/share`), 'nothing was made in the host directory');
    t.deepEqual(fs.readdirSync(victim), ['keep']);
    t.deepEqual(mountsOf(env), []);
    env.ok(t, ['delete', '--force', 'dk2']);
  });

  test.serial('a missing source or a relative path is refused with one line', (t) => {
    const r = env.cli(['config', 'device', 'add', 'dk1', 'bad', 'disk', 'source=/no/such/dir', 'path=/x']);
    t.is(r.code, 1);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, /does not exist on the host/);
    t.regex(env.cli(['config', 'device', 'add', 'dk1', 'bad', 'disk', `source=${env.root}/share`, 'path=rel']).stderr, /absolute path/);
  });
}
