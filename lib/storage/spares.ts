import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { imageSize, type Image } from '../image/store.js';
import { isLayer } from '../image/layers.js';
import { isPacked, unpackPlan } from '../image/unpack.js';
import type { Paths } from '../state/paths.js';
import { claimPidFile, pidFileHolder, processGroupAlive } from '../util/proc.js';
import { run } from '../util/exec.js';
import { listPools, type PoolConfig } from './pool.js';

/**
 * Spare roots of a `dir` pool: a complete copy of an image's tree (of an imported image still
 * packed, its archive unpacked), made in the background after a container was created from that
 * image, so that the next `create`/`launch` of it renames the spare into place instead of copying
 * ~10,000 files while the user waits. The container's root is still
 * a full, private copy of its image (what the dir driver promises); only the moment of copying
 * moves. One spare per image the pool has launched; `spare_roots=false` turns them off (and
 * removes them). Images are immutable in the store (content-addressed), so a spare never goes stale.
 *
 * Layout, in TSLXC_DIR/storage-pools/POOL/spares/ (root only, on the same filesystem as the
 * containers' dirs, so a rename is enough):
 *   FINGERPRINT            a finished spare (renamed into place only once complete and synced)
 *   .tmp-FINGERPRINT       the copy being made
 *   .pid-FINGERPRINT       the PID of the process group making it; gone when it ends
 * A copy runs as `nice -n 19` in a session of its own, from a detached shell, 10 s after the create
 * (not beside the new container's boot); nothing waits for it.
 * Whatever stops it (pool deleted, image deleted, setting turned off, tests ending) kills that
 * process group by PID, after checking the PID still runs our script, and removes the temp dir.
 */
export const SPARE_KEY = 'spare_roots';

export function sparesEnabled(pool: PoolConfig): boolean {
  return pool.driver === 'dir' && pool.config[SPARE_KEY] !== 'false';
}

export function validateSpareSetting(value: string): void {
  if (value !== 'true' && value !== 'false') throw new TslxcError(`Invalid ${SPARE_KEY} "${value.slice(0, 40)}"`, 'give true or false');
}

export const sparesDir = (p: Paths, pool: string) => path.join(p.stateDir, 'storage-pools', pool, 'spares');
const FP = /^[0-9a-f]{64}$/;

/**
 * Moves the image's spare to `dest` (which must not exist). False when there is none (or it is
 * on another filesystem): the caller copies as usual. Two creates racing for one spare: the
 * rename is atomic, one wins, the other copies.
 */
export function takeSpare(p: Paths, pool: PoolConfig, image: Image, dest: string): boolean {
  if (!sparesEnabled(pool) || isLayer(image) || !FP.test(image.fingerprint)) return false;
  try {
    fs.renameSync(path.join(sparesDir(p, pool.name), image.fingerprint), dest);
    return true;
  } catch {
    return false;
  }
}

/** The preparing process of a spare, if it still runs our script (a recycled PID is not ours). */
function preparer(dir: string, fp: string): number | undefined {
  return pidFileHolder(path.join(dir, `.pid-${fp}`), [path.join(dir, `.tmp-${fp}`)]);
}

// $1 temp dir, $2 final name, $3 pid file, $4 seconds to wait first, $5 1 to make $1/rootfs first;
// then the command that makes the tree at $1/rootfs (a copy of the store's tree, or the image's
// archive unpacked: unpack.ts). The spare appears under its final name only complete and on disk
// (sync -f: a host crash must not leave a spare of empty files).
const SCRIPT = [
  't=$1 f=$2 p=$3 w=$4 m=$5; shift 5',
  'trap \'rm -rf "$t"; rm -f "$p"\' EXIT; trap \'exit 1\' TERM INT HUP',
  'sleep "$w" && mkdir -m 700 "$t" && { [ "$m" = 0 ] || mkdir -m 755 "$t/rootfs"; } && "$@" && { [ -d "$t/rootfs" ] || mkdir -m 755 "$t/rootfs"; } && sync -f "$t/rootfs" && mv -T "$t/rootfs" "$f"',
].join('; ');

/**
 * The copy waits this long before it starts: a container just created is usually being booted,
 * and a copy of the image beside that boot (its writes, its final sync) competes with it for the
 * disk and makes launch to running markedly slower; started after the boot it costs the
 * boot nothing. TSLXC_SPARE_DELAY_MS changes it (tests: 0).
 */
function delaySeconds(): string {
  const ms = Number(process.env.TSLXC_SPARE_DELAY_MS ?? 10_000);
  return String(Number.isFinite(ms) && ms >= 0 ? ms / 1000 : 10);
}

/**
 * A spare must never be what fills the disk under running containers: it is made only while the
 * filesystem keeps at least 1 GiB, and 5 % of its size, free after it.
 */
function roomFor(dir: string, image: Image): boolean {
  const stored = imageSize(image);
  if (stored === undefined) return false; // an image stored before sizes were recorded: no guess
  // A packed image's size is its archive's: its tree is taken as 5 times that (gzip and xz of a
  // distribution's tree shrink it 2.5 to 4 times).
  const need = isPacked(image) ? 5 * stored : stored;
  const st = fs.statfsSync(dir);
  const free = st.bavail * st.bsize;
  return free - need >= Math.max(2 ** 30, 0.05 * st.blocks * st.bsize);
}

/**
 * Starts making a spare of `image` for the pool unless one exists or is being made. Never throws
 * and never waits: a spare is an optimisation, and a failure (a full disk) only means the next
 * create copies.
 */
export function prepareSpare(p: Paths, pool: PoolConfig, image: Image): void {
  if (!sparesEnabled(pool) || isLayer(image) || !FP.test(image.fingerprint)) return;
  const fp = image.fingerprint;
  const dir = sparesDir(p, pool.name);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (fs.existsSync(path.join(dir, fp)) || !roomFor(dir, image)) return;
    const tmp = path.join(dir, `.tmp-${fp}`);
    // An image still packed (imported) is unpacked from its archive, as its first container was.
    const fill = isPacked(image) ? unpackPlan(image, tmp) : { argv: ['cp', '-a', '--reflink=auto', image.rootfs, path.join(tmp, 'rootfs')], makeRoot: false };
    const pidFile = path.join(dir, `.pid-${fp}`);
    const fd = claimPidFile(pidFile, () => preparer(dir, fp) !== undefined);
    if (fd === undefined) return; // being made
    fs.rmSync(tmp, { recursive: true, force: true });
    const args = [tmp, path.join(dir, fp), pidFile, delaySeconds(), fill.makeRoot ? '1' : '0', ...fill.argv];
    const child = spawn('nice', ['-n', '19', 'sh', '-c', SCRIPT, 'tslxc-spare', ...args], {
      detached: true,
      stdio: 'ignore',
    });
    child.on('error', () => fs.rmSync(pidFile, { force: true }));
    child.unref();
    fs.writeSync(fd, `${child.pid ?? 0}\n`);
    fs.closeSync(fd);
  } catch {
    /* no spare this time */
  }
}

/** Whether a spare of each image is being made right now (the bench and tests wait on this). */
export function preparing(p: Paths, pool: string): string[] {
  const dir = sparesDir(p, pool);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith('.pid-'))
    .map((n) => n.slice(5))
    .filter((fp) => FP.test(fp) && preparer(dir, fp) !== undefined);
}

/** Finished spares of a pool, by image fingerprint. */
export function listSpares(p: Paths, pool: string): string[] {
  try {
    return fs
      .readdirSync(sparesDir(p, pool))
      .filter((n) => FP.test(n))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Stops the copies in progress (their whole process group, by PID) and removes the spares of one
 * image, or all of the pool's. Waits until the copies are gone, so nothing writes into the pool
 * after this returns.
 */
export async function dropSpares(p: Paths, pool: string, fingerprint?: string): Promise<void> {
  const dir = sparesDir(p, pool);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const fps = new Set(names.map((n) => n.replace(/^\.(pid|tmp)-/, '')).filter((fp) => FP.test(fp) && (!fingerprint || fp === fingerprint)));
  const killed: number[] = [];
  for (const fp of fps) {
    const pid = preparer(dir, fp);
    if (pid === undefined) continue;
    try {
      process.kill(-pid, 'SIGKILL'); // the shell leads its own group (detached): it and its cp
      killed.push(pid);
    } catch {
      /* ended meanwhile */
    }
  }
  for (let i = 0; i < 200 && killed.some(processGroupAlive); i++) await new Promise((r) => setTimeout(r, 10));
  for (const fp of fps) {
    for (const n of [fp, `.tmp-${fp}`, `.pid-${fp}`]) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
  if (!fingerprint) fs.rmSync(dir, { recursive: true, force: true });
}

/** Every pool's spares of an image (the image is being deleted), or every spare of every pool. */
export async function dropAllSpares(p: Paths, fingerprint?: string): Promise<void> {
  for (const pool of listPools(p)) if (pool.driver === 'dir') await dropSpares(p, pool.name, fingerprint);
}

/** A btrfs pool keeps a read-only subvolume per image it has used, a dir pool a spare copy: remove them with the image. */
export async function forgetImageInPools(p: Paths, fingerprint: string): Promise<void> {
  await dropAllSpares(p, fingerprint);
  for (const pool of listPools(p)) {
    if (pool.driver !== 'btrfs') continue;
    const mount = pool.config.source ? path.resolve(pool.config.source) : path.join(p.stateDir, 'storage-pools', pool.name);
    const sub = path.join(mount, 'images', fingerprint);
    if (!fs.existsSync(sub)) continue;
    await run('btrfs', ['property', 'set', sub, 'ro', 'false'], { what: 'unlock' }).catch(() => {});
    await run('btrfs', ['subvolume', 'delete', sub], { what: `Cannot delete ${sub}` }).catch(() => fs.rmSync(sub, { recursive: true, force: true }));
  }
}
