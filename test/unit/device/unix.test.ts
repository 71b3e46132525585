import test from 'ava';
import fs from 'node:fs';
import { nodeSpec, planUnixDevices, resolveUnixDevice, splitDev, unixDeviceRules, validateUnixDevice } from '../../../lib/device/unix.js';
import { validateDevice } from '../../../lib/device/registry.js';

/** unix-char/unix-block keys, the host node lookup, and the helper's node spec. */

const ch = (keys: Record<string, string>) => ({ type: 'unix-char', ...keys });

test('valid devices pass', (t) => {
  for (const d of [
    ch({ source: '/dev/full' }),
    ch({ path: '/dev/fuse' }),
    ch({ path: '/dev/x', major: '240', minor: '0', mode: '600', uid: '1000', gid: '1000', required: 'false' }),
    { type: 'unix-block', source: '/dev/loop0', path: '/dev/l' },
  ]) {
    t.notThrows(() => validateUnixDevice('d', d));
    t.notThrows(() => validateDevice('d', d));
  }
});

test('each bad key is refused in one line naming the device and the key', (t) => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [ch({ path: '/dev/x', major: '1.5', minor: '0' }), 'major', /not a whole number from 0 to 4095/],
    [ch({ path: '/dev/x', major: '4096', minor: '0' }), 'major', /4095/],
    [ch({ path: '/dev/x', major: '1', minor: '1048576' }), 'minor', /1048575/],
    [ch({ path: '/dev/x', minor: '3' }), 'major', /missing/],
    [ch({ source: '/dev/full', mode: '0800' }), 'mode', /octal mode/],
    [ch({ source: '/dev/full', mode: 'rw' }), 'mode', /octal mode/],
    [ch({ source: '/dev/full', mode: '04755' }), 'mode', /octal mode/],
    [ch({ source: '/dev/full', path: 'dev/x' }), 'path', /absolute path inside the container/],
    [ch({ source: '/dev/full', path: '/' }), 'path', /other than \//],
    [ch({ source: '/dev/full', path: '/a/../b' }), 'path', /".."/],
    [ch({ source: '/dev/full', path: '/a:b' }), 'path', /":"/],
    [ch({ source: 'full' }), 'source', /absolute path on the host/],
    [ch({ major: '1', minor: '7' }), 'source', /neither "source"/],
    [ch({}), 'source', /neither "source"/],
    [ch({ source: '/dev/full', uid: 'root' }), 'uid', /whole number/],
    [ch({ source: '/dev/full', gid: '4294967295' }), 'gid', /4294967294/],
    [ch({ source: '/dev/full', required: 'y' }), 'required', /true or false/],
    [ch({ source: '/dev/full', readonly: 'true' }), 'readonly', /unknown key.*take source, path/],
  ];
  for (const [dev, key, why] of cases) {
    const err = t.throws(() => validateDevice('dev1', dev), undefined, JSON.stringify(dev));
    t.true(err!.message.startsWith(`Invalid unix-char device "dev1", key "${key}": `), err!.message);
    t.regex(err!.message, why);
    t.false(err!.message.includes('\n'));
  }
});

test('numbers come from the host node at source (default: path), of the right kind', (t) => {
  t.deepEqual(resolveUnixDevice('n', ch({ source: '/dev/null' })), { type: 'c', major: 1, minor: 3, mode: 0o660, uid: 0, gid: 0, path: '/dev/null' });
  t.deepEqual(resolveUnixDevice('n', ch({ path: '/dev/zero', mode: '0600', uid: '3', gid: '4' })), {
    type: 'c',
    major: 1,
    minor: 5,
    mode: 0o600,
    uid: 3,
    gid: 4,
    path: '/dev/zero',
  });
  t.deepEqual(resolveUnixDevice('n', ch({ source: '/dev/full', path: '/dev/f2' }))?.path, '/dev/f2');
  t.is(resolveUnixDevice('n', ch({ path: '/dev/x', major: '240', minor: '9' }))?.minor, 9, 'given numbers: no host lookup');
  t.throws(() => resolveUnixDevice('n', { type: 'unix-block', source: '/dev/null' }), {
    message: /key "source": \/dev\/null is not a block device on the host \(a character device takes type unix-char\)/,
  });
  t.throws(() => resolveUnixDevice('n', ch({ source: '/dev/tslxc-none' })), {
    message: /^Cannot give unix-char device "n" to the container: its source \/dev\/tslxc-none cannot be read on the host \(ENOENT\)/,
  });
  t.is(resolveUnixDevice('n', ch({ source: '/dev/tslxc-none', required: 'false' })), undefined);
});

test('plan: skipped ones left out, by name; one rule each', (t) => {
  const plan = planUnixDevices([
    ['c', { type: 'unix-block', path: '/dev/b', major: '240', minor: '1' }],
    ['b', ch({ source: '/dev/full' })],
    ['a', ch({ source: '/dev/tslxc-none', required: 'no' })],
  ]);
  t.deepEqual(Object.keys(plan), ['b', 'c']);
  t.deepEqual(
    unixDeviceRules(plan).map((r) => `${r.type} ${r.major}:${r.minor} ${r.access}`),
    ['c 1:7 rwm', 'b 240:1 rwm'],
  );
});

test('node spec: owner mapped through the idmap; an unmapped owner is refused', (t) => {
  const n = { type: 'c' as const, major: 1, minor: 7, mode: 0o640, uid: 5, gid: 6, path: '/dev/f' };
  t.is(nodeSpec('f', n, undefined), 'c:1:7:0640:5:6:/dev/f');
  const map = { uid: [{ nsid: 0, hostid: 100000, count: 65536 }], gid: [{ nsid: 0, hostid: 200000, count: 65536 }] };
  t.is(nodeSpec('f', n, map), 'c:1:7:0640:100005:200006:/dev/f');
  t.throws(() => nodeSpec('f', { ...n, uid: 70000 }, map), { message: /device "f".*owner 70000:6 is not mapped/ });
});

test('dev_t split as glibc does', (t) => {
  t.deepEqual(splitDev(fs.statSync('/dev/null').rdev), { major: 1, minor: 3 });
  t.deepEqual(splitDev((259 << 8) | 5 | (0x123 << 20)), { major: 259, minor: 5 | (0x123 << 8) });
});
