import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { ApiServer } from '../../helpers/api.js';

/**
 * `launch OTHER:IMAGE REMOTE:C` and `launch IMAGE REMOTE:C` when the remote lacks the image: the
 * client relays it (export from the other server or this host's store, upload to the target),
 * as lxc does for images on another remote. Two servers on two test states: "src" has busybox
 * (its state is also this client's local one), "dst" starts empty.
 */
if (requireRoot(test)) {
  const here = new TestEnv('relay');
  const there = new TestEnv('relay2');
  let src: ApiServer;
  let dst: ApiServer;

  const add = (t: Parameters<typeof here.ok>[0], name: string, env: TestEnv) => {
    const tok = env
      .ok(t, ['config', 'trust', 'add', `client-of-${name}`])
      .trim()
      .split('\n')
      .pop()!;
    here.ok(t, ['remote', 'add', name, tok]);
  };
  const dstImages = () => there.cli(['image', 'list', '--format', 'csv']).stdout.trim().split('\n').slice(1).filter(Boolean);

  test.serial.before(async () => {
    const r = here.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    src = await ApiServer.start(here, ['--listen', '127.0.0.1:0']);
    dst = await ApiServer.start(there, ['--listen', '127.0.0.1:0']);
  });
  test.serial.after.always('stop the servers', async () => {
    await src?.stop();
    await dst?.stop();
  });
  leftoverHooks(test, here);
  leftoverHooks(test, there);

  test.serial('launch SRC:IMAGE DST:C copies the image from one server to the other', (t) => {
    add(t, 'src', here);
    add(t, 'dst', there);
    t.deepEqual(dstImages(), []);
    t.regex(here.ok(t, ['launch', 'src:busybox', 'dst:r1']), /^Launched r1$/m);
    t.regex(here.ok(t, ['list', 'dst:']), /^r1\s+RUNNING\s+busybox\s+\d+/m);
    t.regex(dstImages().join('\n'), /^busybox,/m);
    t.is(here.cli(['exec', 'dst:r1', '--', 'true']).code, 0);
    // The image is there now: a second launch sends nothing new and makes no second image.
    here.ok(t, ['create', 'src:busybox', 'dst:r2']);
    t.is(dstImages().length, 1);
    here.ok(t, ['delete', '--force', 'dst:r1', 'dst:r2']);
  });

  test.serial('launch IMAGE DST:C with an image only this host has relays it from the local store', (t) => {
    there.ok(t, ['image', 'delete', 'busybox']);
    t.deepEqual(dstImages(), []);
    t.regex(here.ok(t, ['launch', 'busybox', 'dst:r3']), /^Launched r3$/m);
    t.regex(here.ok(t, ['list', 'dst:']), /^r3\s+RUNNING\s+busybox/m);
    here.ok(t, ['delete', '--force', 'dst:r3']);
    there.ok(t, ['image', 'delete', 'busybox']);
    here.ok(t, ['create', 'local:busybox', 'dst:r4']);
    t.regex(here.ok(t, ['list', 'dst:', '--format', 'csv']), /^r4,CREATED,,busybox,$/m);
    here.ok(t, ['delete', 'dst:r4']);
  });

  test.serial('an image nowhere, or on an image server: one line, nothing made', (t) => {
    for (const [image, why] of [
      ['nosuch', /^Error: Image "nosuch" not found on remote "dst" nor here/],
      ['src:nosuch', /^Error: Image "nosuch" not found on remote "src"/],
      ['images:debian/12', /^Error: Image "images:debian\/12" is not on an API server/],
    ] as const) {
      const r = here.cli(['launch', image, 'dst:r5']);
      t.is(r.code, 1, image);
      t.regex(r.stderr, why);
      t.is(r.stderr.trim().split('\n').length, 1);
    }
    t.is(here.ok(t, ['list', 'dst:', '--format', 'csv']).trim(), 'NAME,STATE,IPV4,IMAGE,PID');
  });
}
