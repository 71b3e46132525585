import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../../errors.js';
import { mkdirp } from '../../util/fs.js';
import { run, requireTool } from '../../util/exec.js';
import type { Paths } from '../../state/paths.js';
import type { Progress } from '../progress.js';

/**
 * debootstrap into a fresh dir. Downloaded packages are kept in the host-wide cache
 * (TSLXC_CACHE_DIR/debs/SUITE), so a rebuild (a new recipe version, CI on the same machine) only
 * installs and does not download again.
 */
export interface DebootstrapSource {
  variant: string;
  mirror: string;
  packages: string[];
  suite?: string;
  /** debootstrap's script for a suite it has none of (noble on Debian 12: gutsy, as jammy's) */
  script?: string;
  /** the archive's signing keyring, required to exist */
  keyring?: string;
}

/** Who the mirror belongs to and what to do instead, for the one line an unreachable mirror gets. */
export interface MirrorHelp {
  /** "Debian", "Ubuntu" */
  os: string;
  /** other ways to get the image, e.g. a remote image or an import */
  alternatives?: string;
}

/**
 * The mirror answers for the suite before debootstrap starts: one request for its Release file,
 * so an unreachable mirror is one clear line at once instead of debootstrap's retries.
 */
async function probeMirror(mirror: string, suite: string, help: MirrorHelp): Promise<void> {
  // wget (debootstrap's) honours a proxy from the environment, fetch does not: leave it to debootstrap.
  if (!/^https?:/.test(mirror) || ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'].some((v) => process.env[v])) return;
  const url = `${mirror.replace(/\/+$/, '')}/dists/${suite}/Release`;
  const fix = `give a reachable --mirror URL${help.alternatives ? `, ${help.alternatives}` : ''}`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new TslxcError(`Cannot reach the ${help.os} mirror ${mirror}`, `${why} (this host may have no route to it)`, fix);
  }
  if (res.status === 404) throw new TslxcError(`The ${help.os} mirror ${mirror} has no release "${suite}"`, `${url}: HTTP 404`, fix);
  if (!res.ok) throw new TslxcError(`Cannot use the ${help.os} mirror ${mirror}`, `${url}: HTTP ${res.status}`, fix);
}

export async function buildDebootstrapRoot(
  paths: Paths,
  rootfs: string,
  source: DebootstrapSource,
  progress: Progress,
  help: MirrorHelp = { os: 'Debian' },
): Promise<void> {
  const debootstrap = requireTool('debootstrap', `build a ${help.os} image`);
  const suite = source.suite ?? 'bookworm';
  progress('download', `checking the mirror ${source.mirror}`);
  await probeMirror(source.mirror, suite, help);
  if (source.keyring && !fs.existsSync(source.keyring)) {
    throw new TslxcError(
      `Cannot build a ${help.os} image`,
      `its archive keyring ${source.keyring} is missing (debootstrap checks the release with it)`,
      `install it (${help.os === 'Ubuntu' ? 'apt-get install ubuntu-keyring' : 'the archive keyring package'})${help.alternatives ? `, or ${help.alternatives}` : ''}`,
    );
  }
  // A suite debootstrap has no script for (Debian 12's knows jammy, not noble) uses the script given.
  const scripts = '/usr/share/debootstrap/scripts';
  const script = source.script && !fs.existsSync(path.join(scripts, suite)) ? path.join(scripts, source.script) : undefined;
  if (script && !fs.existsSync(script))
    throw new TslxcError(`Cannot build a ${help.os} image`, `debootstrap has no script "${source.script}" for ${suite}`, 'update debootstrap');
  const debs = path.join(paths.cacheDir, 'debs', suite);
  mkdirp(debs, 0o755);
  mkdirp(rootfs, 0o755);
  const args = [`--variant=${source.variant}`, `--cache-dir=${debs}`];
  if (source.packages.length) args.push(`--include=${source.packages.join(',')}`);
  if (source.keyring) args.push(`--keyring=${source.keyring}`);
  args.push(suite, rootfs, source.mirror);
  if (script) args.push(script);
  let phase = 'download';
  progress(phase, `debootstrap ${suite} from ${source.mirror}`);
  try {
    await run(debootstrap, args, {
      what: `debootstrap of ${suite} failed`,
      onLine: (line) => {
        const m = /^I: (Retrieving|Validating|Extracting|Unpacking|Installing|Configuring|Base system installed)/.exec(line);
        if (!m) return;
        const next =
          m[1] === 'Retrieving' || m[1] === 'Validating' ? 'download' : m[1] === 'Configuring' || m[1] === 'Base system installed' ? 'configure' : 'unpack';
        if (next !== phase || /Base system/.test(line)) progress((phase = next), line.slice(3));
        else progress(phase, line.slice(3));
      },
    });
  } catch (err) {
    const msg = (err as Error).message;
    if (/Failed getting release file|Couldn't download|Temporary failure|Could not resolve|Network is unreachable|Connection (refused|timed out)/i.test(msg)) {
      throw new TslxcError(
        `Cannot reach the ${help.os} mirror ${source.mirror}`,
        msg.replace(/^.*?: /, ''),
        `check the network or give another --mirror${help.alternatives ? `, ${help.alternatives}` : ''}`,
      );
    }
    if (/No such script|unknown suite/i.test(msg)) {
      throw new TslxcError(
        `Unknown release "${suite}"`,
        'debootstrap has no script for it',
        help.os === 'Debian' ? 'use bullseye, bookworm or trixie (or 11, 12, 13)' : 'see the releases in the recipe',
      );
    }
    throw err;
  }
}
