import test from 'ava';
import path from 'node:path';
import { detectLayout, parseCgroupMounts } from '../../../lib/cgroup/layout.js';
import { fakeHybrid, fakeV2, HYBRID_MOUNTINFO } from './fake-kernel.js';

test('hybrid host: v1 controllers, name=systemd, and an empty cgroup2 beside them', async (t) => {
  const fake = await fakeHybrid();
  t.teardown(fake.cleanup);
  const layout = await detectLayout({ mountinfo: fake.mountinfo, root: fake.root, fs: fake.kernel });
  t.is(layout.version, 'v1');
  t.true(layout.hybrid);
  t.deepEqual(
    layout.v1.map((h) => path.basename(h.mountPoint)),
    ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd'],
  );
  t.deepEqual(layout.v1.find((h) => h.name === 'systemd')?.controllers, []);
  t.deepEqual(layout.v1[3]?.controllers, ['memory']);
  t.is(layout.unified?.mountPoint, path.join(fake.root, 'sys/fs/cgroup/unified'));
  t.deepEqual(layout.unified?.controllers, []);
});

test('without root, mount points are taken as they are', async (t) => {
  const layout = await detectLayout({ mountinfo: HYBRID_MOUNTINFO, fs: { ...fakeFsThatFails() } });
  t.is(layout.v1[0]?.mountPoint, '/sys/fs/cgroup/cpu');
  t.deepEqual(layout.unified?.controllers, []); // unreadable cgroup.controllers: none
});

test('v2 host: controllers come from cgroup.controllers', async (t) => {
  const fake = await fakeV2({ controllers: ['cpu', 'memory', 'pids'] });
  t.teardown(fake.cleanup);
  const layout = await detectLayout({ mountinfo: fake.mountinfo, root: fake.root, fs: fake.kernel });
  t.is(layout.version, 'v2');
  t.false(layout.hybrid);
  t.deepEqual(layout.v1, []);
  t.deepEqual(layout.unified?.controllers, ['cpu', 'memory', 'pids']);
});

test('co-mounted controllers, extra options and bind mounts', async (t) => {
  const text = `30 23 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,clone_children,memory
35 22 0:27 /lxc /var/lib/other/cpu rw - cgroup cgroup rw,cpuacct,cpu
`;
  const layout = await detectLayout({ mountinfo: text, fs: fakeFsThatFails() });
  t.is(layout.version, 'v1');
  t.false(layout.hybrid);
  t.deepEqual(
    layout.v1.map((h) => [h.mountPoint, h.controllers.join(','), h.name ?? '']),
    [
      ['/sys/fs/cgroup/cpu,cpuacct', 'cpu,cpuacct', ''],
      ['/sys/fs/cgroup/net_cls,net_prio', 'net_cls,net_prio', ''],
      ['/sys/fs/cgroup/systemd', '', 'systemd'],
      ['/sys/fs/cgroup/my dir', 'memory', ''],
    ],
  );
});

test('only a name=systemd v1 hierarchy beside cgroup2 is a v2 host', async (t) => {
  const text = `30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
31 30 0:27 / /run/systemd-v1 rw - cgroup cgroup rw,name=systemd
`;
  const layout = await detectLayout({ mountinfo: text, fs: fakeFsThatFails() });
  t.is(layout.version, 'v2');
});

test('no cgroups at all is a clear error', async (t) => {
  const err = await t.throwsAsync(detectLayout({ mountinfo: '22 1 8:1 / / rw - ext4 /dev/vda rw\n', fs: fakeFsThatFails() }));
  t.regex(err!.message, /No cgroup hierarchy found/);
  t.regex(err!.message, /mount -t cgroup2/);
});

test('parseCgroupMounts skips other file systems and short lines', (t) => {
  const mounts = parseCgroupMounts(`garbage\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n22 1 8:1 / / rw - ext4 /dev/vda rw\n`);
  t.deepEqual(mounts, [{ fstype: 'cgroup2', root: '/', mountPoint: '/sys/fs/cgroup/unified', superOptions: ['rw'] }]);
});

function fakeFsThatFails() {
  const no = async () => {
    throw Object.assign(new Error('no'), { code: 'ENOENT' });
  };
  return { readFile: no, writeFile: no, mkdir: no, rmdir: no, rename: no, subdirs: no, exists: async () => false };
}
