import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { cgroupsOf, mountsOf, processesOf } from '../../helpers/leftovers.js';

/**
 * unix-char and unix-block devices on real containers, privileged and unprivileged: the node at
 * its path with its owner and mode, usable; the device cgroup grants that device and no other
 * (an ungranted node made by a privileged root stays refused); hot-add and hot-remove on a
 * running container (node and rule both go), a reboot inside keeps live changes; a failed change
 * rolls back; required=false with a missing source; links planted inside the container never
 * lead a node or a mount out of its root.
 *
 * Devices used: /dev/full (1:7, harmless), and made-up numbers of the local/experimental range
 * (c 240:N, b 240:N) that no driver has here: opening one that the cgroup allows fails with
 * ENXIO ("No such device or address"), one it refuses with EPERM ("Operation not permitted").
 * No host disk is ever granted.
 */
if (requireRoot(test)) {
  const env = new TestEnv('unixdev');
  const devicesCg = () => `/sys/fs/cgroup/devices/${env.paths.cgroupPrefix}`;
  const listOf = (dir: string) => fs.readFileSync(path.join(dir, 'devices.list'), 'utf8');
  const v1 = fs.existsSync('/sys/fs/cgroup/devices');

  const oneLine = (t: ExecutionContext, r: { code: number; stderr: string }, re: RegExp) => {
    t.is(r.code, 1, r.stderr);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re);
  };
  const inside = (t: ExecutionContext, c: string, script: string) => env.ok(t, ['exec', c, '--', 'sh', '-c', script]);
  /** How opening a node for reading goes inside: "ok", "ENXIO", "EPERM" or the message. */
  const openResult = (c: string, node: string) => {
    const r = env.cli(['exec', c, '--', 'sh', '-c', `head -c1 ${node} >/dev/null`]);
    if (r.code === 0) return 'ok';
    if (/No such device or address/.test(r.stderr)) return 'ENXIO';
    if (/Operation not permitted/.test(r.stderr)) return 'EPERM';
    return r.stderr.trim();
  };
  const nodeMountsOnHost = () =>
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes('tslxc-node') && l.includes(env.root));

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  test.serial.after.always('nothing of the file is left on the host', async (t) => {
    await env.deleteContainers();
    const procs = processesOf(env);
    const mounts = mountsOf(env);
    await env.cleanup().catch(() => {});
    t.deepEqual(procs, []);
    t.deepEqual(mounts, []);
    t.deepEqual(cgroupsOf(env), []);
  });

  test.serial('validation: one line naming the device and the key, nothing saved', (t) => {
    env.ok(t, ['create', 'busybox', 'v1']);
    const cases: Array<[string[], RegExp]> = [
      [['major=abc', 'minor=1', 'path=/dev/x'], /device "d", key "major": "abc" is not a whole number/],
      [['major=5000', 'minor=1', 'path=/dev/x'], /key "major": .* from 0 to 4095/],
      [['major=1', 'minor=-1', 'path=/dev/x'], /key "minor"/],
      [['major=1', 'path=/dev/x'], /key "minor": it is missing/],
      [['source=/dev/full', 'mode=0999'], /key "mode": "0999" is not an octal mode/],
      [['source=/dev/full', 'mode=4755'], /key "mode"/],
      [['source=/dev/full', 'path=dev/x'], /key "path": "dev\/x" must be an absolute path inside the container/],
      [['source=/dev/full', 'path=/dev/../etc/x'], /key "path"/],
      [['source=dev/full'], /key "source": .* absolute path on the host/],
      [['major=1', 'minor=7'], /key "source": neither "source" .* nor "path"/],
      [['source=/dev/full', 'uid=-1'], /key "uid"/],
      [['source=/dev/full', 'required=maybe'], /key "required": "maybe" is not true or false/],
      [['source=/dev/full', 'colour=red'], /key "colour": unknown key/],
    ];
    for (const [keys, re] of cases) {
      const r = env.cli(['config', 'device', 'add', 'v1', 'd', 'unix-char', ...keys]);
      oneLine(t, r, re);
      t.regex(r.stderr, /Invalid unix-char device "d"/, keys.join(' '));
    }
    // A host node of the wrong kind is caught when the numbers are read (at start or live).
    env.ok(t, ['config', 'device', 'add', 'v1', 'd', 'unix-block', 'source=/dev/full']);
    oneLine(t, env.cli(['start', 'v1']), /unix-block device "d", key "source": \/dev\/full is not a block device on the host/);
    env.ok(t, ['config', 'device', 'remove', 'v1', 'd']);
    t.deepEqual(Object.keys(JSON.parse(env.ok(t, ['config', 'show', 'v1', '--format', 'json'])).devices), []);
    env.ok(t, ['delete', 'v1']);
  });

  test.serial('unprivileged: nodes at start with owner and mode, usable, only the granted devices; live add and remove; a reboot keeps them', async (t) => {
    env.ok(t, ['create', 'busybox', 'u1']);
    env.ok(t, ['config', 'device', 'add', 'u1', 'full2', 'unix-char', 'source=/dev/full', 'path=/dev/myfull', 'mode=0640', 'uid=5', 'gid=6']);
    env.ok(t, ['config', 'device', 'add', 'u1', 'x', 'unix-char', 'major=240', 'minor=0', 'path=/dev/x0']);
    env.ok(t, ['start', 'u1']);
    t.regex(inside(t, 'u1', 'cat /proc/self/uid_map'), /^\s*0\s+[1-9]\d*\s/, 'a user namespace');
    t.regex(inside(t, 'u1', 'ls -ln /dev/myfull'), /^crw-r-----\s+1\s+5\s+6\s+1,\s+7 /);
    t.regex(inside(t, 'u1', 'ls -ln /dev/x0'), /^crw-rw----\s+1\s+0\s+0\s+240,\s+0 /, 'defaults: mode 0660, root');
    t.is(inside(t, 'u1', 'head -c3 /dev/myfull | od -An -tx1').trim(), '00 00 00');
    const w = env.cli(['exec', 'u1', '--', 'sh', '-c', 'echo x > /dev/myfull']);
    t.regex(w.stderr, /No space left on device/);
    t.is(openResult('u1', '/dev/x0'), 'ENXIO', 'granted: the cgroup lets it through to the (absent) driver');
    if (v1) {
      const list = listOf(`${devicesCg()}/u1`);
      t.regex(list, /^c 240:0 rwm$/m);
      t.notRegex(list, /240:1|^a /m);
    }
    t.deepEqual(mountsOf(env), [], 'no mount on the host');
    t.deepEqual(nodeMountsOnHost(), []);

    // Live: remove one, add a block device in a new dir.
    const rm = env.cli(['config', 'device', 'remove', 'u1', 'x']);
    t.is(rm.code, 0, rm.stderr);
    t.regex(rm.stderr, /removed unix-char x/);
    t.is(inside(t, 'u1', 'ls /dev/x0 2>&1 || true').trim(), 'ls: /dev/x0: No such file or directory');
    t.is(inside(t, 'u1', 'grep -c " /dev/x0 " /proc/mounts || true').trim(), '0');
    if (v1) {
      t.notRegex(listOf(`${devicesCg()}/u1`), /240:0/);
      t.notRegex(listOf(devicesCg()), /240:0/, 'the prefix does not keep a grant no container holds');
    }
    env.ok(t, ['config', 'device', 'add', 'u1', 'blk', 'unix-block', 'major=240', 'minor=1', 'path=/dev/sub/b1', 'mode=0600']);
    t.regex(inside(t, 'u1', 'ls -ln /dev/sub/b1'), /^brw-------\s+1\s+0\s+0\s+240,\s+1 /);
    t.is(openResult('u1', '/dev/sub/b1'), 'ENXIO');
    if (v1) t.regex(listOf(`${devicesCg()}/u1`), /^b 240:1 rwm$/m);

    // A reboot inside boots again from the monitor's nodes file: the live change stays.
    const pid = JSON.parse(env.ok(t, ['info', 'u1', '--format', 'json'])).state.pid;
    env.cli(['exec', 'u1', '--', 'reboot']);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const info = JSON.parse(env.cli(['info', 'u1', '--format', 'json']).stdout || '{}');
      if (info.state?.pid && info.state.pid !== pid && env.cli(['exec', 'u1', '--', 'true']).code === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    t.regex(inside(t, 'u1', 'ls -ln /dev/myfull /dev/sub/b1'), /crw-r-----\s+1\s+5\s+6.*\n.*brw-------.*240,\s+1 /s);
    t.is(inside(t, 'u1', 'ls /dev/x0 2>/dev/null || echo gone').trim(), 'gone');
    env.ok(t, ['delete', '--force', 'u1']);
    t.deepEqual(mountsOf(env), []);
  });

  test.serial('privileged: the granted device opens, an ungranted node made inside does not, nor a host disk; hot-remove revokes it', (t) => {
    env.ok(t, ['create', 'busybox', 'p1', '-c', 'security.privileged=true']);
    env.ok(t, ['config', 'device', 'add', 'p1', 'x', 'unix-char', 'major=240', 'minor=0', 'path=/dev/x0', 'uid=7']);
    env.ok(t, ['start', 'p1']);
    t.regex(inside(t, 'p1', 'cat /proc/self/uid_map'), /^\s*0\s+0\s+4294967295/, 'no user namespace');
    t.regex(inside(t, 'p1', 'ls -ln /dev/x0'), /^crw-rw----\s+1\s+7\s+0\s+240,\s+0 /);
    t.is(openResult('p1', '/dev/x0'), 'ENXIO');
    // Root inside may mknod anything, but opens only what the cgroup allows.
    inside(t, 'p1', 'mknod /tmp/same c 240 0 && mknod /tmp/other c 240 1 && mknod /tmp/blk b 240 0');
    t.is(openResult('p1', '/tmp/same'), 'ENXIO', 'the same device under another name is the granted device');
    t.is(openResult('p1', '/tmp/other'), 'EPERM', 'an ungranted minor');
    t.is(openResult('p1', '/tmp/blk'), 'EPERM', 'a block device of the same numbers');
    // The host's root disk, by its numbers: refused by the cgroup before any driver sees it.
    const rootDev = fs.statSync('/').dev;
    const major = Math.floor(rootDev / 256) & 0xfff;
    const minor = (rootDev & 0xff) | ((rootDev >> 12) & 0xfff00);
    inside(t, 'p1', `mknod /tmp/disk b ${major} ${minor}`);
    t.is(openResult('p1', '/tmp/disk'), 'EPERM');

    env.ok(t, ['config', 'device', 'remove', 'p1', 'x']);
    t.is(inside(t, 'p1', 'ls /dev/x0 2>/dev/null || echo gone').trim(), 'gone');
    t.is(openResult('p1', '/tmp/same'), 'EPERM', 'revoked: the node root made itself no longer opens');
    env.ok(t, ['config', 'device', 'add', 'p1', 'x', 'unix-char', 'major=240', 'minor=0', 'path=/dev/x0']);
    t.is(openResult('p1', '/tmp/same'), 'ENXIO', 'granted again live');
    env.ok(t, ['delete', '--force', 'p1']);
  });

  test.serial('required: a missing source fails the start in one line with nothing made; required=false starts without it', (t) => {
    env.ok(t, ['create', 'busybox', 'r1']);
    env.ok(t, ['config', 'device', 'add', 'r1', 'gone', 'unix-char', 'source=/dev/tslxc-no-such-node', 'path=/dev/gone']);
    oneLine(
      t,
      env.cli(['start', 'r1']),
      /^Error: Cannot give unix-char device "gone" to the container: its source \/dev\/tslxc-no-such-node cannot be read on the host \(ENOENT\) \(.*required=false.*\)$/m,
    );
    t.deepEqual(
      cgroupsOf(env).filter((c) => c.endsWith('/r1')),
      [],
      'no cgroup made',
    );
    t.false(fs.existsSync(`${env.paths.runDir}/containers/r1/monitor.pid`));
    env.ok(t, ['config', 'device', 'remove', 'r1', 'gone']);
    env.ok(t, ['config', 'device', 'add', 'r1', 'gone', 'unix-char', 'source=/dev/tslxc-no-such-node', 'path=/dev/gone', 'required=false']);
    env.ok(t, ['start', 'r1']);
    t.is(inside(t, 'r1', 'ls /dev/gone 2>/dev/null || echo none').trim(), 'none');
    // Live as well: a required one is refused with nothing applied, a non-required one skipped.
    oneLine(t, env.cli(['config', 'device', 'add', 'r1', 'g2', 'unix-char', 'source=/dev/tslxc-no-such-node2']), /Cannot give unix-char device "g2"/);
    t.false(Object.keys(JSON.parse(env.ok(t, ['config', 'show', 'r1', '--format', 'json'])).devices).includes('g2'));
    const r = env.cli(['config', 'device', 'add', 'r1', 'g2', 'unix-char', 'source=/dev/tslxc-no-such-node2', 'required=false']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /skipped unix-char g2/);
    env.ok(t, ['delete', '--force', 'r1']);
  });

  test.serial('a live add that fails rolls back: no node, no rule, no config change', (t) => {
    env.ok(t, ['launch', 'busybox', 'f1']);
    // /etc is a directory inside: the node cannot go there.
    const r = env.cli(['config', 'device', 'add', 'f1', 'bad', 'unix-char', 'major=240', 'minor=3', 'path=/etc']);
    oneLine(t, r, /Cannot add unix-char device "bad" of running container "f1": .*directory/);
    if (v1) {
      t.notRegex(listOf(`${devicesCg()}/f1`), /240:3/);
      t.notRegex(listOf(devicesCg()), /240:3/);
    }
    t.false(Object.keys(JSON.parse(env.ok(t, ['config', 'show', 'f1', '--format', 'json'])).devices).includes('bad'));
    // The next change still starts from what the container really has.
    env.ok(t, ['config', 'device', 'add', 'f1', 'good', 'unix-char', 'major=240', 'minor=3', 'path=/dev/g']);
    t.is(openResult('f1', '/dev/g'), 'ENXIO');
    env.ok(t, ['delete', '--force', 'f1']);
  });

  for (const privileged of [true, false]) {
    const c = privileged ? 'lp' : 'lu';
    test.serial(`links planted in a ${privileged ? 'privileged' : 'unprivileged'} container keep the node inside its root (live and at boot)`, (t) => {
      const bait = path.join(env.root, `bait-${c}`);
      fs.mkdirSync(bait);
      env.ok(t, ['launch', 'busybox', c, ...(privileged ? ['-c', 'security.privileged=true'] : [])]);
      // An absolute link, a relative one climbing out, a link to a directory: each names a
      // host path, and inside the container the same path exists (made below), so the kernel's
      // in-root resolution has somewhere to go; a dangling one is refused.
      inside(
        t,
        c,
        `mkdir -p /opt ${bait} && touch ${bait}/abs ${bait}/rel && ln -s ${bait}/abs /opt/abs && ln -s ../../../../../../../..${bait}/rel /opt/rel && ln -s ${bait} /opt/dir && ln -s ${bait}/none /opt/dang`,
      );
      env.ok(t, ['config', 'device', 'add', c, 'a', 'unix-char', 'major=240', 'minor=4', 'path=/opt/abs']);
      env.ok(t, ['config', 'device', 'add', c, 'b', 'unix-char', 'major=240', 'minor=5', 'path=/opt/rel']);
      env.ok(t, ['config', 'device', 'add', c, 'd', 'unix-char', 'major=240', 'minor=6', 'path=/opt/dir/n']);
      oneLine(
        t,
        env.cli(['config', 'device', 'add', c, 'e', 'unix-char', 'major=240', 'minor=7', 'path=/opt/dang']),
        /Cannot add unix-char device "e" of running container/,
      );
      t.deepEqual(fs.readdirSync(bait), [], 'nothing made on the host');
      t.deepEqual(mountsOf(env), []);
      t.deepEqual(nodeMountsOnHost(), []);
      // Inside, each link was followed within the container's root.
      t.regex(inside(t, c, `ls -l ${bait}/abs ${bait}/n ${bait}/rel`), /240,\s+4.*\n.*240,\s+6.*\n.*240,\s+5/s);
      t.is(openResult(c, '/opt/abs'), 'ENXIO');
      // At boot the same paths are resolved the same way (the links live on the rootfs).
      env.ok(t, ['restart', c]);
      t.deepEqual(fs.readdirSync(bait), [], 'nothing made on the host at boot');
      t.deepEqual(mountsOf(env), []);
      t.regex(inside(t, c, `ls -l ${bait}/abs ${bait}/n`), /240,\s+4.*\n.*240,\s+6/s);
      // Removal follows the links inside as well: the nodes go, the container's own files stay,
      // the placeholder made for n goes; the host is left alone.
      for (const d of ['a', 'b', 'd']) env.ok(t, ['config', 'device', 'remove', c, d]);
      t.is(inside(t, c, `ls ${bait} | tr '\\n' ' '`).trim(), 'abs rel');
      t.regex(inside(t, c, `ls -l ${bait}/abs`), /^-rw/);
      t.is(inside(t, c, 'grep -c tslxc-node /proc/mounts || true').trim(), '0');
      env.ok(t, ['delete', '--force', c]);
      t.deepEqual(fs.readdirSync(bait), []);
    });
  }
}
