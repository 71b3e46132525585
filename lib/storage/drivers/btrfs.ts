import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../../errors.js';
import { getImage, type Image } from '../../image/store.js';
import { applyLayer, isLayer } from '../../image/layers.js';
import { isPacked, unpackOriginal } from '../../image/unpack.js';
import { parseSize } from '../../util/units.js';
import { findTool, run, runSync, requireTool } from '../../util/exec.js';
import { withLock } from '../../util/lock.js';
import { locksDir, type Paths } from '../../state/paths.js';
import { poolsDir, type PoolConfig } from '../pool.js';
import { poolError, runOnPool, statfsUsage } from './common.js';
import type { Driver, FullView, HostAccess, RootSwap, Target, Usage } from './types.js';
import { journalFile } from '../../state/journal.js';
import { pidAlive } from '../../util/proc.js';

/**
 * `btrfs`: on an existing btrfs path (source=PATH) or on a loop file tslxc makes (size=SIZE):
 * TSLXC_DIR/storage-pools/NAME.img, mounted on TSLXC_DIR/storage-pools/NAME (a pool mount on the
 * host, as LXD's; `-o loop` sets autoclear, so unmounting frees the loop device). Inside:
 *   images/<fingerprint>       a subvolume holding the image (read-only once made)
 *   containers/<name>          a snapshot of its image's subvolume
 *   snapshots/<name>/<snap>    read-only snapshots of a container
 */
const loopFile = (p: Paths, pool: PoolConfig) => path.join(poolsDir(p), `${pool.name}.img`);
const loopMount = (p: Paths, pool: PoolConfig) => path.join(poolsDir(p), pool.name);
const isLoop = (pool: PoolConfig) => !pool.config.source;

export function mountPoint(p: Paths, pool: PoolConfig): string {
  return pool.config.source ? path.resolve(pool.config.source) : loopMount(p, pool);
}

function isMounted(dir: string): boolean {
  const mi = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return mi.split('\n').some((l) => l.split(' ')[4] === dir);
}

function fsType(dir: string): string {
  return runSync('stat', ['-f', '-c', '%T', dir], `Cannot inspect ${dir}`).trim();
}

export async function btrfs(args: string[], what: string): Promise<void> {
  await run(requireTool('btrfs', 'use a btrfs pool'), args, { what });
}

/** Deletes a subvolume, and any a container made inside it (systemd does on btrfs). */
export async function deleteSubvolume(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  try {
    await btrfs(['subvolume', 'delete', '-c', dir], `Cannot delete subvolume ${dir}`);
  } catch {
    // Nested subvolumes: since Linux 4.18 rmdir removes an empty subvolume, so rm -rf does it all.
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A packed image's archive unpacked into a new subvolume, so the tree is written once and the
 * store keeps no tree of it: into a dir inside the subvolume (a rename cannot cross subvolumes),
 * then the rootfs's entries moved up to the subvolume's root, which takes the rootfs's owner and mode.
 */
async function unpackIntoSubvolume(t: Target, image: Image, sub: string): Promise<void> {
  let stage = path.join(sub, `.tslxc-unpack-${process.pid}`);
  fs.mkdirSync(stage, { mode: 0o700 });
  await unpackOriginal(image, stage, (c, a, what) => runOnPool(t.pool, c, a, what));
  const entries = fs.readdirSync(path.join(stage, 'rootfs'));
  // The tree may hold an entry of the stage's own name: the stage moves out of its way first.
  for (let i = 0; entries.includes(path.basename(stage)); i++) {
    const next = path.join(sub, `.tslxc-unpack-${process.pid}-${i}`);
    fs.renameSync(stage, next);
    stage = next;
  }
  const root = path.join(stage, 'rootfs');
  for (const e of entries) fs.renameSync(path.join(root, e), path.join(sub, e));
  const st = fs.lstatSync(root);
  fs.chownSync(sub, st.uid, st.gid);
  fs.chmodSync(sub, st.mode & 0o7777);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.utimesSync(sub, st.atime, st.mtime);
}

export class BtrfsDriver implements Driver {
  async initPool(p: Paths, pool: PoolConfig): Promise<void> {
    requireTool('btrfs', 'create a btrfs pool');
    for (const k of Object.keys(pool.config)) {
      if (!['source', 'size'].includes(k)) throw new TslxcError(`Cannot create pool "${pool.name}"`, `unknown key "${k}" for btrfs (allowed: source, size)`);
    }
    if (pool.config.source) {
      if (pool.config.size) throw new TslxcError(`Cannot create pool "${pool.name}"`, 'give source= (an existing btrfs path) or size= (a loop file), not both');
      const src = path.resolve(pool.config.source);
      if (!fs.existsSync(src) || !fs.statSync(src).isDirectory()) throw new TslxcError(`Cannot create pool "${pool.name}"`, `${src} is not a directory`);
      if (fsType(src) !== 'btrfs')
        throw new TslxcError(`Cannot create pool "${pool.name}"`, `${src} is not on a btrfs filesystem`, 'give a btrfs path, or size=SIZE for a loop file');
      pool.config.source = src;
    } else {
      const size = parseSize(pool.config.size ?? '5GiB', { key: 'size' });
      if (size < 128 * 1024 * 1024) throw new TslxcError(`Cannot create pool "${pool.name}"`, 'a btrfs loop file needs at least 128MiB');
      pool.config.size = String(size);
      const file = loopFile(p, pool);
      if (fs.existsSync(file)) throw new TslxcError(`Cannot create pool "${pool.name}"`, `${file} already exists`);
      fs.mkdirSync(poolsDir(p), { recursive: true, mode: 0o711 });
      const fd = fs.openSync(file, 'wx', 0o600);
      try {
        fs.ftruncateSync(fd, size);
      } finally {
        fs.closeSync(fd);
      }
      try {
        await run(requireTool('mkfs.btrfs', 'create a btrfs pool'), ['-q', '-f', file], { what: `Cannot make a btrfs filesystem in ${file}` });
        await this.activate(p, pool);
      } catch (err) {
        fs.rmSync(file, { force: true });
        throw err;
      }
    }
    const m = mountPoint(p, pool);
    for (const d of ['images', 'containers', 'snapshots']) fs.mkdirSync(path.join(m, d), { recursive: true, mode: 0o711 });
  }

  async activate(p: Paths, pool: PoolConfig): Promise<void> {
    if (!isLoop(pool)) return;
    const m = loopMount(p, pool);
    if (isMounted(m)) return;
    fs.mkdirSync(m, { recursive: true, mode: 0o711 });
    await run('mount', ['-t', 'btrfs', '-o', 'loop,noatime', loopFile(p, pool), m], { what: `Cannot mount storage pool "${pool.name}"` });
  }

  async destroyPool(p: Paths, pool: PoolConfig): Promise<void> {
    const m = mountPoint(p, pool);
    if (isLoop(pool)) {
      if (isMounted(m)) await run('umount', [m], { what: `Cannot unmount storage pool "${pool.name}"` });
      fs.rmSync(loopFile(p, pool), { force: true });
      fs.rmSync(m, { recursive: true, force: true });
      return;
    }
    // An existing btrfs path: remove only what tslxc made there.
    for (const d of ['images', 'containers', 'snapshots', 'volumes']) {
      const dir = path.join(m, d);
      if (!fs.existsSync(dir)) continue;
      for (const e of fs.readdirSync(dir)) {
        const sub = path.join(dir, e);
        if (d === 'snapshots' || e === '.snapshots')
          for (const s of fs.existsSync(sub) && fs.statSync(sub).isDirectory() ? fs.readdirSync(sub) : []) await deleteSubvolume(path.join(sub, s));
        await deleteSubvolume(sub);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  source(p: Paths, pool: PoolConfig): string {
    return isLoop(pool) ? loopFile(p, pool) : mountPoint(p, pool);
  }
  usage(p: Paths, pool: PoolConfig): Usage {
    return statfsUsage(mountPoint(p, pool));
  }

  /** Grows a loop-backed pool: the file, then the filesystem (online). */
  async grow(p: Paths, pool: PoolConfig, size: number): Promise<void> {
    if (!isLoop(pool)) throw new TslxcError(`Cannot resize pool "${pool.name}"`, 'only a loop-file pool can be resized by tslxc');
    const file = loopFile(p, pool);
    if (size < fs.statSync(file).size) throw new TslxcError(`Cannot resize pool "${pool.name}"`, 'shrinking is not supported');
    await this.activate(p, pool);
    fs.truncateSync(file, size);
    const m = loopMount(p, pool);
    const dev = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === m)
      ?.split(' - ')[1]
      ?.split(' ')[1];
    if (dev?.startsWith('/dev/loop')) await run('losetup', ['-c', dev], { what: `Cannot resize ${dev}` });
    await btrfs(['filesystem', 'resize', 'max', m], `Cannot grow pool "${pool.name}"`);
  }

  private dirs(t: Target) {
    const m = mountPoint(t.paths, t.pool);
    return { m, root: path.join(m, 'containers', t.name), snaps: path.join(m, 'snapshots', t.name) };
  }

  /**
   * The image's subvolume, made once per pool (under a lock; temp name + rename). A whole image
   * is copied in (an imported one still packed: its archive unpacked in); a layered one is a writable snapshot of its parent's subvolume (made first)
   * with its layer applied, so the pool holds each image's difference only once.
   */
  private async imageSubvolume(t: Target, image: Image, depth = 0): Promise<string> {
    const m = mountPoint(t.paths, t.pool);
    const dst = path.join(m, 'images', image.fingerprint);
    if (fs.existsSync(dst)) return dst;
    let parentSub: string | undefined;
    if (isLayer(image)) {
      const parent = getImage(t.paths, image.metadata.tslxc?.parent ?? '');
      if (!parent || depth > 64)
        throw new TslxcError(
          `Cannot use image ${image.fingerprint.slice(0, 12)}`,
          'it is stored as a layer over a parent that is not in the image store',
          'pull or import the parent image again',
        );
      parentSub = await this.imageSubvolume(t, parent, depth + 1);
    }
    return withLock(locksDir(t.paths), `pool-${t.pool.name}-image`, async () => {
      if (fs.existsSync(dst)) return dst;
      const tmp = path.join(m, 'images', `.tmp-${image.fingerprint.slice(0, 12)}-${process.pid}`);
      await deleteSubvolume(tmp);
      try {
        if (parentSub) {
          await btrfs(
            ['subvolume', 'snapshot', parentSub, tmp],
            `Cannot snapshot image ${image.metadata.tslxc?.parent?.slice(0, 12)} in pool "${t.pool.name}"`,
          );
          await applyLayer(image.rootfs, tmp, (c, a, what) => runOnPool(t.pool, c, a, what));
        } else if (isPacked(image)) {
          await btrfs(['subvolume', 'create', tmp], 'Cannot create an image subvolume');
          await unpackIntoSubvolume(t, image, tmp);
        } else {
          await btrfs(['subvolume', 'create', tmp], 'Cannot create an image subvolume');
          await run('cp', ['-a', '--reflink=auto', `${image.rootfs}/.`, tmp], {
            what: `Cannot copy image ${image.fingerprint.slice(0, 12)} into pool "${t.pool.name}"`,
          });
        }
        await btrfs(['property', 'set', tmp, 'ro', 'true'], 'Cannot make the image subvolume read-only');
        fs.renameSync(tmp, dst);
      } catch (err) {
        await btrfs(['property', 'set', tmp, 'ro', 'false'], 'unlock').catch(() => {});
        await deleteSubvolume(tmp);
        throw poolError(t, err);
      }
      return dst;
    });
  }

  async createRoot(t: Target, image: Image): Promise<void> {
    await this.activate(t.paths, t.pool);
    const src = await this.imageSubvolume(t, image);
    const { root } = this.dirs(t);
    await deleteSubvolume(root); // a leftover of a crashed create (no container owns it: the caller checked)
    await btrfs(['subvolume', 'snapshot', src, root], `Cannot snapshot the image for "${t.name}"`).catch((e) => {
      throw poolError(t, e);
    });
  }
  /**
   * Before any use of the root. A journal a killed restore committed was finished when the
   * container's lock was taken, or by prepareRootfs once the pool was mounted; one still there
   * (its writer runs) keeps everything as it is. Before journals a restore swapped through a fixed
   * name, and a crash between its renames left the old root aside: it is put back.
   */
  private recover(t: Target): string {
    const { root, m } = this.dirs(t);
    if (fs.existsSync(journalFile(t.instDir))) return root;
    const old = path.join(m, 'containers', `.old-${t.name}`);
    if (!fs.existsSync(root) && fs.existsSync(old)) fs.renameSync(old, root);
    // What dead restores left (built and never committed, or replaced by a commit) goes now.
    for (const dead of this.deadRestores(t)) {
      const r = spawnSync(findTool('btrfs') ?? 'btrfs', ['subvolume', 'delete', dead], { stdio: 'ignore' });
      if (r.status !== 0) fs.rmSync(dead, { recursive: true, force: true });
    }
    return root;
  }
  private deadRestores(t: Target): string[] {
    const dir = path.join(this.dirs(t).m, 'containers');
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      return [];
    }
    return entries.flatMap((e) => {
      const m = /^\.(restore|old)-(.+)-(\d+)$/.exec(e);
      return m && m[2] === t.name && !pidAlive(Number(m[3])) ? [path.join(dir, e)] : [];
    });
  }
  /** Subvolumes of restores whose tslxc died: built and never committed, or replaced by a commit. */
  private async sweepRestores(t: Target): Promise<void> {
    for (const dead of this.deadRestores(t)) await deleteSubvolume(dead);
  }
  startArgs(t: Target): string[] {
    return ['--rootfs', this.recover(t)];
  }
  /**
   * Without writing (file pull and push, ssh keys, disk usage run outside a start, some without
   * the lock): a root a restore from before journals left aside is read there, and put back, with
   * dead restores' subvolumes removed, by recover at the next start, snapshot, copy or rename.
   */
  access(t: Target): HostAccess {
    const { root, m } = this.dirs(t);
    const old = path.join(m, 'containers', `.old-${t.name}`);
    return { root: !fs.existsSync(root) && fs.existsSync(old) ? old : root };
  }
  async deleteRoot(t: Target): Promise<void> {
    await this.activate(t.paths, t.pool);
    const { root, snaps } = this.dirs(t);
    if (fs.existsSync(snaps)) {
      for (const s of fs.readdirSync(snaps)) await deleteSubvolume(path.join(snaps, s));
      fs.rmSync(snaps, { recursive: true, force: true });
    }
    await deleteSubvolume(root);
    await this.sweepRestores(t);
  }
  async rootRenames(from: Target, to: Target): Promise<Array<[string, string]>> {
    await this.activate(from.paths, from.pool);
    this.recover(from);
    const a = this.dirs(from);
    const b = this.dirs(to);
    // Leftovers of a crashed create or copy of that name: no container owns them (the caller checked).
    await deleteSubvolume(b.root);
    if (fs.existsSync(b.snaps)) {
      for (const s of fs.readdirSync(b.snaps)) await deleteSubvolume(path.join(b.snaps, s));
      fs.rmSync(b.snaps, { recursive: true, force: true });
    }
    return [[a.root, b.root], ...(fs.existsSync(a.snaps) ? [[a.snaps, b.snaps] as [string, string]] : [])];
  }
  async copyRoot(from: Target, to: Target): Promise<void> {
    await this.activate(from.paths, from.pool);
    const b = this.dirs(to);
    await deleteSubvolume(b.root);
    await btrfs(['subvolume', 'snapshot', this.dirs(from).root, b.root], `Cannot copy "${from.name}"`).catch((e) => {
      throw poolError(to, e);
    });
  }
  async snapshot(t: Target, _snapDir: string, snap: string): Promise<void> {
    await this.activate(t.paths, t.pool);
    const { root, snaps } = this.dirs(t);
    fs.mkdirSync(snaps, { recursive: true, mode: 0o700 });
    await deleteSubvolume(path.join(snaps, snap)); // orphan of a crashed snapshot
    await btrfs(['subvolume', 'snapshot', '-r', root, path.join(snaps, snap)], `Cannot snapshot "${t.name}"`).catch((e) => {
      throw poolError(t, e);
    });
  }
  async restore(t: Target, _snapDir: string, snap: string): Promise<RootSwap> {
    await this.activate(t.paths, t.pool);
    this.recover(t);
    await this.sweepRestores(t);
    const { root, snaps, m } = this.dirs(t);
    const fresh = path.join(m, 'containers', `.restore-${t.name}-${process.pid}`);
    const old = path.join(m, 'containers', `.old-${t.name}-${process.pid}`);
    await deleteSubvolume(fresh);
    await btrfs(['subvolume', 'snapshot', path.join(snaps, snap), fresh], `Cannot restore "${t.name}"`).catch(async (e) => {
      await deleteSubvolume(fresh);
      throw poolError(t, e);
    });
    return {
      renames: [
        [root, old],
        [fresh, root],
      ],
      leftovers: [old],
      discard: () => deleteSubvolume(old),
    };
  }
  async deleteSnapshot(t: Target, _snapDir: string, snap: string): Promise<void> {
    await this.activate(t.paths, t.pool);
    await deleteSubvolume(path.join(this.dirs(t).snaps, snap));
  }
  fullView(t: Target, _snapDir?: string, snap?: string): FullView {
    return { dir: snap ? path.join(this.dirs(t).snaps, snap) : this.recover(t) };
  }
  async importRoot(to: Target, fill: (dir: string) => Promise<void>): Promise<void> {
    await this.activate(to.paths, to.pool);
    const { root } = this.dirs(to);
    await deleteSubvolume(root);
    await btrfs(['subvolume', 'create', root], `Cannot create the root of "${to.name}"`).catch((e) => {
      throw poolError(to, e);
    });
    await fill(root);
  }
  async importSnapshot(to: Target, _snapDir: string, snap: string, fill: (dir: string) => Promise<void>): Promise<void> {
    const { snaps } = this.dirs(to);
    fs.mkdirSync(snaps, { recursive: true, mode: 0o700 });
    const dir = path.join(snaps, snap);
    await deleteSubvolume(dir);
    await btrfs(['subvolume', 'create', dir], `Cannot create snapshot ${snap} of "${to.name}"`).catch((e) => {
      throw poolError(to, e);
    });
    await fill(dir);
    await btrfs(['property', 'set', dir, 'ro', 'true'], 'Cannot make the snapshot read-only');
  }
  /** Same-pool copies of a container's snapshots: read-only snapshots of its read-only snapshots. */
  async copySnapshot(from: Target, snap: string, to: Target): Promise<void> {
    const b = this.dirs(to);
    fs.mkdirSync(b.snaps, { recursive: true, mode: 0o700 });
    await deleteSubvolume(path.join(b.snaps, snap));
    await btrfs(
      ['subvolume', 'snapshot', '-r', path.join(this.dirs(from).snaps, snap), path.join(b.snaps, snap)],
      `Cannot copy snapshot ${from.name}/${snap}`,
    ).catch((e) => {
      throw poolError(to, e);
    });
  }
  /**
   * The root's size limit: a qgroup limit on its subvolume (quotas are enabled on the pool the first
   * time a limit is asked for). No size: the limit is lifted, where quotas are on.
   */
  async setRootSize(t: Target, bytes: number | undefined): Promise<void> {
    await this.activate(t.paths, t.pool);
    const { root, m } = this.dirs(t);
    if (!fs.existsSync(root)) return;
    await limitSubvolume(t.pool, m, root, bytes, `the root of "${t.name}"`);
  }
  snapshotData(t: Target, snap: string): string {
    return path.join(this.dirs(t).snaps, snap);
  }
  async copyFromSnapshot(from: Target, _snapDir: string, snap: string, to: Target): Promise<void> {
    await this.activate(from.paths, from.pool);
    const b = this.dirs(to);
    await deleteSubvolume(b.root);
    await btrfs(['subvolume', 'snapshot', path.join(this.dirs(from).snaps, snap), b.root], `Cannot copy "${from.name}/${snap}"`);
  }
}

/**
 * A qgroup limit on a subvolume of the pool mounted at `m` (quotas are enabled on the pool the
 * first time a limit is asked for). No size: the limit is lifted, where quotas are on.
 */
export async function limitSubvolume(pool: PoolConfig, m: string, dir: string, bytes: number | undefined, what: string): Promise<void> {
  if (bytes === undefined) {
    if (quotasOn(m)) await btrfs(['qgroup', 'limit', 'none', dir], `Cannot lift the size limit of ${what}`).catch(() => {});
    return;
  }
  if (!quotasOn(m)) {
    await btrfs(['quota', 'enable', m], `Cannot enable quotas on pool "${pool.name}"`);
    fs.writeFileSync(quotaMarker(m), '');
  }
  await btrfs(['qgroup', 'limit', String(bytes), dir], `Cannot limit ${what} to ${bytes} bytes`);
}

/** Whether tslxc turned quotas on for the pool mounted at `dir` (a marker it leaves there). */
const quotaMarker = (dir: string) => path.join(dir, '.tslxc-quotas');
function quotasOn(dir: string): boolean {
  return fs.existsSync(quotaMarker(dir));
}
