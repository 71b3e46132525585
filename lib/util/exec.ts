import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { TslxcError } from '../errors.js';

/** Where a host tool comes from, so a missing one can be named with its Debian package. */
const PACKAGES: Record<string, string> = {
  debootstrap: 'debootstrap',
  busybox: 'busybox-static',
  cc: 'gcc',
  make: 'make',
  ip: 'iproute2',
  nft: 'nftables',
  dnsmasq: 'dnsmasq-base',
  dhcp_release: 'dnsmasq-utils',
  chroot: 'coreutils',
  cp: 'coreutils',
  tar: 'tar',
  getfattr: 'attr',
  setfattr: 'attr',
  rsync: 'rsync',
  unshare: 'util-linux',
};

/**
 * A host tool by absolute path, the system's directories first: under `npm test` PATH starts
 * with node_modules/.bin, where unrelated programs live (ava brings an `nft` that is a file
 * tracer, not nftables).
 */
export function findTool(name: string): string | undefined {
  const dirs = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH || '').split(':').filter(Boolean)];
  for (const dir of dirs) {
    const p = `${dir}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function requireTool(name: string, purpose: string): string {
  const p = findTool(name);
  if (!p) {
    const pkg = PACKAGES[name] ?? name;
    throw new TslxcError(`Cannot ${purpose}`, `the "${name}" command is missing`, `install it with: apt-get install ${pkg}`);
  }
  return p;
}

/**
 * Run a command to completion. Output lines go to onLine (for progress); on failure the error
 * names the command and carries its last few lines of output, which is usually the reason.
 */
/**
 * GNU tar exits 1 when a file's ctime moved while it was read. Image files are immutable but
 * hard-linked from the shared build cache, and each new link moves their ctime: a concurrent
 * create or build linking the same files makes tar say "file changed as we read it" about a
 * file whose content did not change. Exit 1 with only those lines is a success.
 */
export const tarFileChangedOnly = (code: number, lines: string[]) =>
  code === 1 && lines.filter((l) => l.trim()).every((l) => /file changed as we read it$/.test(l));

export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { onLine?: (line: string) => void; what?: string; tolerate?: (code: number, lines: string[]) => boolean } = {},
): Promise<void> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const take = (line: string) => {
    tail.push(line);
    if (tail.length > 8) tail.shift();
    opts.onLine?.(line);
  };
  readline.createInterface({ input: child.stdout! }).on('line', take);
  readline.createInterface({ input: child.stderr! }).on('line', take);
  const code: number = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? 15 : 0)));
  });
  if (code !== 0 && !opts.tolerate?.(code, tail)) {
    const last = tail
      .filter((l) => l.trim())
      .slice(-2)
      .join(' / ');
    throw new TslxcError(opts.what ?? `${cmd} failed`, `exit ${code}${last ? `: ${last}` : ''}`);
  }
}

export function runSync(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new TslxcError(what, r.error.message);
  if (r.status !== 0) throw new TslxcError(what, (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-1)[0]);
  return r.stdout;
}
