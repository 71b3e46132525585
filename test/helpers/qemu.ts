import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A cgroup v2 machine for tests on this v1-hybrid host: a Debian kernel booted under qemu
 * (software emulation) with an initramfs the test builds. Used by test/integration/cgroup/v2-*.
 *
 * Needs qemu-system-x86_64, a static busybox (busybox-static) and a kernel image at
 * $TSLXC_V2_KERNEL or /var/cache/tslxc/v2-kernel/vmlinuz. To get one:
 *   apt-get install qemu-system-x86 busybox-static
 *   cd /tmp && apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends:/ {print $2}')"
 *   dpkg-deb -x linux-image-*.deb k && mkdir -p /var/cache/tslxc/v2-kernel && cp k/boot/vmlinuz-* /var/cache/tslxc/v2-kernel/vmlinuz
 */
export const v2Kernel = process.env.TSLXC_V2_KERNEL || '/var/cache/tslxc/v2-kernel/vmlinuz';
export const qemuPath = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).stdout.trim();

/** A static binary has no PT_INTERP: ldd says so. */
export function isStatic(file: string): boolean {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  return /not a dynamic executable|statically linked/.test(r.stdout + r.stderr);
}

export const staticBusybox = ['/bin/busybox', '/usr/bin/busybox'].find((b) => fs.existsSync(b) && isStatic(b));

/** What this host lacks to boot the VM (empty: it can). */
export function vmMissing(): string[] {
  return [!qemuPath && 'qemu-system-x86_64', !fs.existsSync(v2Kernel) && `a kernel at ${v2Kernel}`, !staticBusybox && 'a static busybox'].filter(
    (x): x is string => !!x,
  );
}

/** A binary into the initramfs root at dest, with the shared libraries ldd names for it. */
export function copyBinary(root: string, file: string, dest: string): void {
  fs.mkdirSync(path.dirname(path.join(root, dest)), { recursive: true });
  fs.copyFileSync(file, path.join(root, dest));
  fs.chmodSync(path.join(root, dest), 0o755);
  for (const lib of spawnSync('ldd', [file], { encoding: 'utf8' }).stdout.match(/\/\S+/g) ?? []) {
    if (fs.existsSync(path.join(root, lib))) continue;
    fs.mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), path.join(root, lib));
  }
}

/** The root as a newc cpio archive (the initramfs). */
export function packInitrd(root: string, work: string): string {
  const cpio = path.join(work, 'initrd.cpio');
  const r = spawnSync('sh', ['-c', `cd "${root}" && find . | "${staticBusybox}" cpio -o -H newc > "${cpio}"`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the initrd failed: ${r.stderr}`);
  return cpio;
}

/** Boots the kernel with the initramfs; resolves with the serial console's output when it powers off. */
export function bootVm(initrd: string, opts: { memoryMiB: number; timeoutMs: number }): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const vm = spawn(
      qemuPath,
      [
        '-accel',
        'tcg',
        '-m',
        String(opts.memoryMiB),
        '-smp',
        '2',
        '-kernel',
        v2Kernel,
        '-initrd',
        initrd,
        '-append',
        'console=ttyS0 rdinit=/init panic=-1 quiet',
        '-nographic',
        '-no-reboot',
        '-serial',
        'stdio',
        '-monitor',
        'none',
        '-display',
        'none',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    vm.stdout.on('data', (d) => (out += d));
    vm.stderr.on('data', (d) => (out += d));
    // Only this VM's qemu, by its PID.
    const timer = setTimeout(() => vm.pid && process.kill(vm.pid, 'SIGKILL'), opts.timeoutMs);
    vm.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
