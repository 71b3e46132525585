import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * This machine is cgroup v1 (hybrid); most users run v2. This test boots a Debian kernel under
 * qemu (software emulation, about 10 s) with an initramfs holding busybox, node, the compiled
 * cgroup library and v2-vm-smoke.js, mounts cgroup2 on /sys/fs/cgroup, and runs the v2 driver
 * there against the real kernel. Nothing of it touches the host's cgroups.
 *
 * Needs qemu-system-x86_64, a static busybox (busybox-static) and an uncompressed-initrd-capable
 * kernel image: $TSLXC_V2_KERNEL, or /var/cache/tslxc/v2-kernel/vmlinuz. To get one:
 *   apt-get install qemu-system-x86 busybox-static
 *   cd /tmp && apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends:/ {print $2}')"
 *   dpkg-deb -x linux-image-*.deb k && mkdir -p /var/cache/tslxc/v2-kernel && cp k/boot/vmlinuz-* /var/cache/tslxc/v2-kernel/vmlinuz
 * Without them the test skips (it needs no root: the VM is its own machine).
 */
const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const kernel = process.env.TSLXC_V2_KERNEL || '/var/cache/tslxc/v2-kernel/vmlinuz';
const qemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).stdout.trim();
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((b) => fs.existsSync(b) && isStatic(b));

function isStatic(file: string): boolean {
  // A static binary has no PT_INTERP: ldd says so.
  return /not a dynamic executable|statically linked/.test(spawnSync('ldd', [file], { encoding: 'utf8' }).stdout + spawnSync('ldd', [file], { encoding: 'utf8' }).stderr);
}

const missing = [!qemu && 'qemu-system-x86_64', !fs.existsSync(kernel) && `a kernel at ${kernel}`, !busybox && 'a static busybox'].filter(Boolean);

if (missing.length > 0) {
  test(`cgroup v2 driver in a VM (skipped: needs ${missing.join(', ')})`, (t) => t.pass());
} else {
  test('cgroup v2 driver on a real v2 kernel (qemu)', async (t) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-v2vm-'));
    t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
    const initrd = buildInitrd(work);
    const { code, out } = await boot(initrd, 300_000);
    const lines = out.split(/\r?\n/);
    for (const l of lines.filter((x) => /^(not ok - |ok - |# )/.test(x))) t.log(l);
    const done = lines.map((l) => /^SMOKE DONE (\d+) passed (\d+) failed/.exec(l)).find(Boolean);
    if (!done) t.fail(`the VM did not finish the smoke test (qemu exit ${code}):\n${lines.slice(-30).join('\n')}`);
    else {
      t.deepEqual(lines.filter((l) => l.startsWith('not ok')), []);
      t.is(Number(done[2]), 0);
      t.true(Number(done[1]) >= 11, `only ${done[1]} checks ran`);
    }
  });
}

/** busybox, node with its shared libraries, the compiled library and the smoke script, an init. */
function buildInitrd(work: string): string {
  const root = path.join(work, 'root');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'run', 'usr/bin', 'app']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(busybox!, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const node = fs.realpathSync(process.execPath);
  fs.copyFileSync(node, path.join(root, 'usr/bin/node'));
  fs.chmodSync(path.join(root, 'usr/bin/node'), 0o755);
  const libs = spawnSync('ldd', [node], { encoding: 'utf8' }).stdout.match(/\/\S+/g) ?? [];
  for (const lib of libs) {
    fs.mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(root, lib));
  }
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
    fs.copyFileSync(busybox!, path.join(ct, 'bin/busybox'));
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
  const cpio = path.join(work, 'initrd.cpio');
  const r = spawnSync('sh', ['-c', `cd "${root}" && find . | "${busybox}" cpio -o -H newc > "${cpio}"`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the initrd failed: ${r.stderr}`);
  return cpio;
}

function boot(initrd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const vm = spawn(
      qemu,
      ['-accel', 'tcg', '-m', '1024', '-smp', '2', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 rdinit=/init panic=-1 quiet', '-nographic', '-no-reboot', '-serial', 'stdio', '-monitor', 'none', '-display', 'none'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    vm.stdout.on('data', (d) => (out += d));
    vm.stderr.on('data', (d) => (out += d));
    // Only this VM's qemu, by its PID.
    const timer = setTimeout(() => vm.pid && process.kill(vm.pid, 'SIGKILL'), timeoutMs);
    vm.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
