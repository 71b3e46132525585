import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { runOk } from './proc.js';

/**
 * The LXC peer: a privileged container in the bench's private lxcpath whose rootfs is a copy of
 * the tslxc container's freshly created (never booted) rootfs. Like tslxc's containers today it
 * has no network device besides lo (lxc.net.0.type = empty), and no AppArmor (the host has none).
 */
export async function createLxcContainer(env: BenchEnv, name: string, sourceRootfs: string, net: string[] = ['lxc.net.0.type = empty']): Promise<string> {
  const dir = path.join(env.lxcPath, name);
  env.lxcNames.add(name); // before anything exists, so cleanup covers a half-made one
  fs.mkdirSync(dir);
  const rootfs = path.join(dir, 'rootfs');
  await runOk('cp', ['-a', sourceRootfs, rootfs], { timeoutMs: 300_000 });
  // Same name and hostname as the tslxc container; only the machine id must differ.
  fs.writeFileSync(path.join(rootfs, 'etc/machine-id'), randomBytes(16).toString('hex') + '\n');
  const config = [
    `# tslxc bench: the LXC peer of a tslxc Debian container (same rootfs${net.length === 1 && net[0].endsWith('empty') ? ', no network' : ''})`,
    'lxc.include = /usr/share/lxc/config/debian.common.conf',
    'lxc.arch = linux64',
    `lxc.rootfs.path = dir:${rootfs}`,
    `lxc.uts.name = ${name}`,
    ...net,
    'lxc.apparmor.profile = unconfined',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'config'), config);
  return config;
}

export async function lxcVersion(): Promise<string> {
  try {
    return (await runOk('lxc-start', ['--version'])).stdout.trim();
  } catch {
    return 'unknown';
  }
}

/** The container's init PID, from lxc-info. */
export async function lxcInitPid(env: BenchEnv, name: string): Promise<number> {
  const r = await env.lxc('lxc-info', name, ['-pH']);
  const pid = Number(r.stdout.trim());
  if (r.code !== 0 || !pid) throw new Error(`lxc-info -p ${name}: ${r.stderr.trim() || r.stdout.trim()}`);
  return pid;
}
