import path from 'node:path';
import { TslxcError } from '../../errors.js';
import { mkdirp } from '../../util/fs.js';
import { run, requireTool } from '../../util/exec.js';
import type { Paths } from '../../state/paths.js';
import type { Progress } from '../build.js';

/**
 * debootstrap into a fresh dir. Downloaded packages are kept in the host-wide cache
 * (TSLXC_CACHE_DIR/debs/SUITE), so a rebuild (a new recipe version, CI on the same machine) only
 * installs and does not download again.
 */
export async function buildDebootstrapRoot(
  paths: Paths,
  rootfs: string,
  source: { variant: string; mirror: string; packages: string[]; suite?: string },
  progress: Progress,
): Promise<void> {
  const debootstrap = requireTool('debootstrap', 'build a Debian image');
  const suite = source.suite ?? 'bookworm';
  const debs = path.join(paths.cacheDir, 'debs', suite);
  mkdirp(debs, 0o755);
  mkdirp(rootfs, 0o755);
  const args = [`--variant=${source.variant}`, `--cache-dir=${debs}`];
  if (source.packages.length) args.push(`--include=${source.packages.join(',')}`);
  args.push(suite, rootfs, source.mirror);
  let phase = 'download';
  progress(phase, `debootstrap ${suite} from ${source.mirror}`);
  try {
    await run(debootstrap, args, {
      what: `debootstrap of ${suite} failed`,
      onLine: (line) => {
        const m = /^I: (Retrieving|Validating|Extracting|Unpacking|Installing|Configuring|Base system installed)/.exec(line);
        if (!m) return;
        const next = m[1] === 'Retrieving' || m[1] === 'Validating' ? 'download' : m[1] === 'Configuring' || m[1] === 'Base system installed' ? 'configure' : 'unpack';
        if (next !== phase || /Base system/.test(line)) progress((phase = next), line.slice(3));
        else progress(phase, line.slice(3));
      },
    });
  } catch (err) {
    const msg = (err as Error).message;
    if (/Failed getting release file|Couldn't download|Temporary failure|Could not resolve|Network is unreachable|Connection (refused|timed out)/i.test(msg)) {
      throw new TslxcError(`Cannot reach the Debian mirror ${source.mirror}`, msg.replace(/^.*?: /, ''), 'check the network or give another --mirror');
    }
    if (/No such script|unknown suite/i.test(msg)) {
      throw new TslxcError(`Unknown release "${suite}"`, 'debootstrap has no script for it', 'use bullseye, bookworm or trixie (or 11, 12, 13)');
    }
    throw err;
  }
}
