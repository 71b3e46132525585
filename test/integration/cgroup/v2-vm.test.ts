import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootVm, copyBinary, packInitrd, staticBusybox, vmMissing } from '../../helpers/qemu.js';

/**
 * This machine is cgroup v1 (hybrid); most users run v2. This test boots a Debian kernel under
 * qemu (software emulation, about 10 s) with an initramfs holding busybox, node, the compiled
 * cgroup library and v2-vm-smoke.js, mounts cgroup2 on /sys/fs/cgroup, and runs the v2 driver
 * there against the real kernel. Nothing of it touches the host's cgroups.
 *
 * Needs what test/helpers/qemu.ts names (qemu-system-x86_64, a static busybox, a kernel image);
 * without them the test skips (it needs no root: the VM is its own machine).
 */
const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const missing = vmMissing();

if (missing.length > 0) {
  test(`cgroup v2 driver in a VM (skipped: needs ${missing.join(', ')})`, (t) => t.pass());
} else {
  test('cgroup v2 driver on a real v2 kernel (qemu)', async (t) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-v2vm-'));
    t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
    const initrd = buildInitrd(work);
    const { code, out } = await bootVm(initrd, { memoryMiB: 1024, timeoutMs: 300_000 });
    const lines = out.split(/\r?\n/);
    for (const l of lines.filter((x) => /^(not ok - |ok - |# )/.test(x))) t.log(l);
    const done = lines.map((l) => /^SMOKE DONE (\d+) passed (\d+) failed/.exec(l)).find(Boolean);
    if (!done) t.fail(`the VM did not finish the smoke test (qemu exit ${code}):\n${lines.slice(-30).join('\n')}`);
    else {
      t.deepEqual(
        lines.filter((l) => l.startsWith('not ok')),
        [],
      );
      t.is(Number(done[2]), 0);
      t.true(Number(done[1]) >= 11, `only ${done[1]} checks ran`);
    }
  });
}

/** busybox, node with its shared libraries, the compiled library and the smoke script, an init. */
function buildInitrd(work: string): string {
  const root = path.join(work, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'run', 'usr/bin', 'app']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(staticBusybox!, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  copyBinary(root, fs.realpathSync(process.execPath), 'usr/bin/node');
  fs.mkdirSync(path.join(root, 'app/dist/lib'), { recursive: true });
  fs.cpSync(path.join(distRoot, 'lib/cgroup'), path.join(root, 'app/dist/lib/cgroup'), { recursive: true });
  fs.copyFileSync(path.join(distRoot, 'lib/errors.js'), path.join(root, 'app/dist/lib/errors.js'));
  const smoke = 'test/integration/cgroup/v2-vm-smoke.js';
  fs.mkdirSync(path.join(root, 'app/dist', path.dirname(smoke)), { recursive: true });
  fs.copyFileSync(path.join(distRoot, smoke), path.join(root, 'app/dist', smoke));
  fs.writeFileSync(path.join(root, 'app/package.json'), '{"type":"module"}\n');
  // The native helper and a busybox rootfs: the smoke test boots an unprivileged container.
  const helper = path.resolve(distRoot, '../native/build/tslxc-helper');
  if (fs.existsSync(helper)) {
    fs.mkdirSync(path.join(root, 'app/native'), { recursive: true });
    fs.copyFileSync(helper, path.join(root, 'app/native/tslxc-helper'));
    fs.chmodSync(path.join(root, 'app/native/tslxc-helper'), 0o755);
    const ct = path.join(root, 'ct/rootfs');
    for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root']) fs.mkdirSync(path.join(ct, d), { recursive: true });
    fs.copyFileSync(staticBusybox!, path.join(ct, 'bin/busybox'));
    fs.chmodSync(path.join(ct, 'bin/busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(ct, 'bin/sh'));
    fs.writeFileSync(path.join(ct, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(ct, 'etc/group'), 'root:x:0:\n');
  }
  fs.writeFileSync(
    path.join(root, 'init'),
    `#!/bin/busybox sh
/bin/busybox --install -s /bin
# pivot_root (a container's start) cannot leave the initramfs root: move to a tmpfs first.
if [ ! -e /.switched ]; then
  mkdir -p /newroot && mount -t tmpfs -o size=900m root /newroot
  for d in /*; do [ "$d" = /newroot ] || cp -a "$d" /newroot/; done
  touch /newroot/.switched
  exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmp /tmp
echo "SMOKE START $(uname -r)"
/usr/bin/node /app/dist/${smoke}
poweroff -f
`,
    { mode: 0o755 },
  );
  return packInitrd(root, work);
}
