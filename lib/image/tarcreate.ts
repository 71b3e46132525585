import { spawn } from 'node:child_process';
import { TslxcError } from '../errors.js';

/**
 * `tar -c ARGS` of an image's files, where "file changed as we read it" is not a failure.
 *
 * An image's rootfs is immutable, but its files are hard links shared with the build cache
 * (store.ts copies builds with `cp -al`) and with every other store on the host made from the same
 * build: each link or unlink of one of those (another store importing or deleting the image, a
 * test suite's private store) changes the inode's ctime. GNU tar compares ctime before and after
 * reading a file and then exits 1 with "file changed as we read it", although not a byte changed.
 * So that warning is silenced, and exit 1 with nothing else said is success; any other message,
 * or exit 2 (a fatal error), still fails.
 */
export async function tarCreate(tar: string, args: string[], what: string): Promise<void> {
  const child = spawn(tar, ['--warning=no-file-changed', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const take = (d: Buffer) => {
    out += d.toString();
    if (out.length > 8192) out = out.slice(-4096);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const code: number = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? 15 : 0)));
  });
  const said = out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (code === 0 || (code === 1 && said.length === 0)) return;
  throw new TslxcError(what, `exit ${code}${said.length ? `: ${said.slice(-2).join(' / ')}` : ''}`);
}
