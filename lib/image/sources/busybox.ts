import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../../errors.js';
import { findTool, runSync } from '../../util/exec.js';

/**
 * A root filesystem from the host's busybox-static: the binary, a symlink per applet, and the
 * directories a system needs. The recipe adds /etc. The binary must be static, since the tree
 * holds no libraries.
 */
export async function buildBusyboxRoot(rootfs: string): Promise<void> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p)) ?? findTool('busybox');
  if (!busybox) throw new TslxcError('Cannot build the busybox image', 'busybox is not installed on the host', 'apt-get install busybox-static');
  if (hasInterpreter(busybox)) {
    throw new TslxcError('Cannot build the busybox image', `${busybox} is dynamically linked`, 'apt-get install busybox-static');
  }
  const dirs: Array<[string, number]> = [
    ['bin', 0o755],
    ['sbin', 0o755],
    ['usr/bin', 0o755],
    ['usr/sbin', 0o755],
    ['etc/init.d', 0o755],
    ['proc', 0o555],
    ['sys', 0o555],
    ['dev', 0o755],
    ['run', 0o755],
    ['tmp', 0o1777],
    ['root', 0o700],
    ['home/user', 0o755],
    ['var/log', 0o755],
    ['var/tmp', 0o1777],
    ['mnt', 0o755],
  ];
  for (const [d, mode] of dirs) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
    fs.chmodSync(path.join(rootfs, d), mode);
  }
  fs.chownSync(path.join(rootfs, 'home/user'), 1000, 1000);
  fs.symlinkSync('/run', path.join(rootfs, 'var/run'));
  fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  const applets = runSync(busybox, ['--list-full'], 'Cannot list busybox applets').split('\n').filter(Boolean);
  for (const applet of applets) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    const link = path.join(rootfs, applet);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync('/bin/busybox', link);
  }
}

/** True when an ELF file names a program interpreter (PT_INTERP), i.e. it is dynamically linked. */
function hasInterpreter(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const h = Buffer.alloc(64);
    fs.readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false; // not ELF64: let it be
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return true;
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
