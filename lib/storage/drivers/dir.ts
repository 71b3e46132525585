import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../../errors.js';
import { getImage, type Image } from '../../image/store.js';
import { isLayer, layerDirs, runOnOverlay } from '../../image/layers.js';
import { ensureUnpacked, isPacked, unpackOriginal } from '../../image/unpack.js';
import { runOnPool, statfsUsage } from './common.js';
import { findTool } from '../../util/exec.js';
import { containersDir, type Paths } from '../../state/paths.js';
import type { PoolConfig } from '../pool.js';
import type { Driver, FullView, HostAccess, RootSwap, Target, Usage } from './types.js';
import { journalFile } from '../../state/journal.js';
import { crashPoint } from '../../util/crash.js';
import { prepareSpare, takeSpare, validateSpareSetting, SPARE_KEY } from '../spares.js';

/**
 * `dir`: a container's root is INSTANCE_DIR/rootfs, a full copy of its image (reflinked where the
 * filesystem can). `overlay` shares all of this but the root: there INSTANCE_DIR/rootfs is the
 * overlay's upper layer only.
 */
export const rootDir = (t: Target) => path.join(t.instDir, 'rootfs');

/** A full copy (reflinked where the filesystem can); a full disk is reported as the pool's. */
const cp = (t: Target, src: string, dst: string) => runOnPool(t.pool, 'cp', ['-a', '--reflink=auto', src, dst], `Cannot copy ${src}`);

/**
 * Before any use of a container's root: what a restore made before journals left aside is put back.
 * A journal a killed restore committed was finished, and its temps removed, when the container's
 * lock was taken (Context.withInstanceLock); one still there (its writer runs) keeps the dir as it is.
 */
export function recoverRoot(instDir: string): void {
  if (fs.existsSync(journalFile(instDir))) return;
  const root = path.join(instDir, 'rootfs');
  // Before journals, a restore swapped through fixed names: a crash between its renames left the old root aside.
  const legacyOld = path.join(instDir, '.rootfs-old');
  if (!fs.existsSync(root) && fs.existsSync(legacyOld)) fs.renameSync(legacyOld, root);
  for (const stray of ['.rootfs-old', '.rootfs-new']) {
    if (fs.existsSync(root)) fs.rmSync(path.join(instDir, stray), { recursive: true, force: true });
  }
}

/**
 * The root for access() (file pull and push, ssh keys, disk usage), found without writing: those
 * run outside a start, some without the container's lock. Before journals, a killed restore left
 * the root aside: it is read there, and put back by recoverRoot at the next start or snapshot.
 */
function currentRoot(instDir: string): string {
  const root = path.join(instDir, 'rootfs');
  const legacyOld = path.join(instDir, '.rootfs-old');
  return !fs.existsSync(root) && fs.existsSync(legacyOld) ? legacyOld : root;
}

/**
 * A packed image's archive unpacked into INSTANCE_DIR/.unpack-PID, its tree renamed to the root
 * once whole. A failure removes the temp dir; a killed create leaves it in the container's dir,
 * which `delete` of the container (shown as Error) removes; its tar dies with it (runOnPool).
 */
async function unpackRoot(t: Target, image: Image): Promise<void> {
  const tmp = path.join(t.instDir, `.unpack-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { mode: 0o700 });
  try {
    const root = await unpackOriginal(image, tmp, (c, a, what) => runOnPool(t.pool, c, a, what));
    crashPoint('create:unpacked');
    fs.renameSync(root, rootDir(t));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export class DirDriver implements Driver {
  async initPool(_paths: Paths, pool: PoolConfig): Promise<void> {
    for (const k of Object.keys(pool.config)) {
      if (k === SPARE_KEY && pool.driver === 'dir') validateSpareSetting(pool.config[k]);
      else if (k !== 'source')
        throw new TslxcError(
          `Cannot create pool "${pool.name}"`,
          `unknown key "${k}" for the ${pool.driver} driver`,
          pool.driver === 'dir' ? `it takes ${SPARE_KEY}=true|false` : 'it takes no keys',
        );
    }
    if (pool.config.source)
      throw new TslxcError(
        `Cannot create pool "${pool.name}"`,
        `the ${pool.driver} driver keeps roots in each container's dir under TSLXC_DIR and takes no "source"`,
        'use a btrfs pool for another place',
      );
  }
  async activate(): Promise<void> {}
  async destroyPool(): Promise<void> {}
  source(paths: Paths): string {
    return containersDir(paths);
  }
  usage(paths: Paths): Usage {
    return statfsUsage(paths.stateDir);
  }

  /**
   * A whole copy of the image's tree: of a layered image, its merged view; of an image still packed
   * (imported), its archive unpacked straight into the container, so the tree is written once and
   * the store keeps no tree. A spare made ahead of time (spares.ts) is renamed into place when there
   * is one; either way the next spare is started in the background.
   */
  async createRoot(t: Target, image: Image): Promise<void> {
    if (!isLayer(image)) {
      if (!takeSpare(t.paths, t.pool, image, rootDir(t))) {
        if (isPacked(image)) await unpackRoot(t, image);
        else await cp(t, image.rootfs, rootDir(t));
      }
      prepareSpare(t.paths, t.pool, image);
      return;
    }
    image = await ensureUnpacked(t.paths, image);
    const view = path.join(t.instDir, '.image-view');
    fs.mkdirSync(view, { recursive: true, mode: 0o700 });
    try {
      await runOnOverlay(
        { lowers: layerDirs(t.paths, image) },
        view,
        'cp',
        ['-a', '--reflink=auto', view, rootDir(t)],
        `Cannot copy image ${image.fingerprint.slice(0, 12)}`,
        (c, a, what) => runOnPool(t.pool, c, a, what),
      );
    } finally {
      fs.rmdirSync(view);
    }
  }
  startArgs(t: Target): string[] {
    recoverRoot(t.instDir);
    return ['--rootfs', rootDir(t)];
  }
  access(t: Target): HostAccess {
    return { root: currentRoot(t.instDir) };
  }
  async deleteRoot(): Promise<void> {
    /* the root lives in the container's dir, which is removed with it */
  }
  async rootRenames(): Promise<Array<[string, string]>> {
    return []; /* it moves with the container's dir */
  }
  async copyRoot(from: Target, to: Target): Promise<void> {
    recoverRoot(from.instDir);
    await cp(to, rootDir(from), rootDir(to));
  }
  async snapshot(t: Target, snapDir: string): Promise<void> {
    recoverRoot(t.instDir);
    await cp(t, rootDir(t), path.join(snapDir, 'rootfs'));
  }
  /**
   * The snapshot's tree is made beside the root and swapped in (crash-safe: old or new, never
   * half). With rsync, files the root still has exactly as in the snapshot (same content by
   * checksum, same attributes) are hard-linked from the root instead of copied (--link-dest):
   * a restore writes only what changed since the snapshot, as LXD's in-place rsync does. The old
   * root is removed right after the swap, so no inode stays shared with it; the snapshot's own
   * files are never linked.
   */
  async restore(t: Target, snapDir: string, _snap?: string): Promise<RootSwap> {
    recoverRoot(t.instDir);
    const fresh = path.join(t.instDir, `.rootfs-new-${process.pid}`);
    const old = path.join(t.instDir, `.rootfs-old-${process.pid}`);
    fs.rmSync(fresh, { recursive: true, force: true });
    const src = path.join(snapDir, 'rootfs');
    try {
      if (findTool('rsync')) {
        await runOnPool(
          t.pool,
          'rsync',
          ['-aHAX', '--numeric-ids', '--checksum', `--link-dest=${rootDir(t)}`, `${src}/`, `${fresh}/`],
          `Cannot restore ${src}`,
        );
      } else await cp(t, src, fresh);
    } catch (err) {
      fs.rmSync(fresh, { recursive: true, force: true });
      throw err;
    }
    return {
      renames: [
        [rootDir(t), old],
        [fresh, rootDir(t)],
      ],
      leftovers: [old],
      discard: async () => fs.rmSync(old, { recursive: true, force: true }),
    };
  }
  async deleteSnapshot(): Promise<void> {
    /* the data is in the snapshot's dir, removed by the caller */
  }
  snapshotData(): string | undefined {
    return undefined; // in the snapshot's dir
  }
  async copyFromSnapshot(_from: Target, snapDir: string, _snap: string, to: Target): Promise<void> {
    await cp(to, path.join(snapDir, 'rootfs'), rootDir(to));
  }
  fullView(t: Target, snapDir?: string): FullView {
    if (snapDir) return { dir: path.join(snapDir, 'rootfs') };
    recoverRoot(t.instDir);
    return { dir: rootDir(t) };
  }
  async importRoot(to: Target, fill: (dir: string) => Promise<void>): Promise<void> {
    fs.mkdirSync(rootDir(to), { mode: 0o755 });
    await fill(rootDir(to));
  }
  async importSnapshot(_to: Target, snapDir: string, _snap: string, fill: (dir: string) => Promise<void>): Promise<void> {
    fs.mkdirSync(path.join(snapDir, 'rootfs'), { mode: 0o755 });
    await fill(path.join(snapDir, 'rootfs'));
  }
}

export class OverlayDriver extends DirDriver {
  /** The image's layers, top first: a child image's own layer over its parent's. */
  private layers(t: Target): string[] {
    const fp = t.record.image;
    if (!fp || !/^[0-9a-f]{64}$/.test(fp)) throw new TslxcError(`Cannot use the root of "${t.name}"`, 'its storage record names no image layer');
    const image = getImage(t.paths, fp);
    if (!image || !fs.existsSync(image.rootfs))
      throw new TslxcError(`Cannot use the root of "${t.name}"`, `its image ${fp.slice(0, 12)} (the overlay's lower layer) is missing from the image store`);
    return layerDirs(t.paths, image);
  }
  private work = (t: Target) => path.join(t.instDir, 'overlay-work');
  private merged = (t: Target) => path.join(t.instDir, 'merged');

  /** Upper, work and staging dirs. The merged root takes the upper dir's owner and mode. */
  private makeDirs(t: Target, lower: string, withUpper: boolean): void {
    if (withUpper) {
      const st = fs.statSync(lower);
      fs.mkdirSync(rootDir(t));
      fs.chownSync(rootDir(t), st.uid, st.gid);
      fs.chmodSync(rootDir(t), st.mode & 0o7777);
    }
    fs.rmSync(this.work(t), { recursive: true, force: true });
    fs.mkdirSync(this.work(t), { mode: 0o700 });
    fs.mkdirSync(this.merged(t), { mode: 0o755, recursive: true });
  }

  override async createRoot(t: Target, image: Image): Promise<void> {
    // The image's tree is the lower layer: an imported image is unpacked into the store for it.
    image = await ensureUnpacked(t.paths, image);
    this.makeDirs(t, this.layers(t)[0] ?? image.rootfs, true);
  }
  override fullView(t: Target, snapDir?: string): FullView {
    const v = super.fullView(t, snapDir);
    return t.record.flat ? v : { ...v, lower: this.layers(t) };
  }
  private args(t: Target, upper: string): string[] {
    const args = ['--rootfs', this.merged(t)];
    for (const l of this.layers(t)) args.push('--rootfs-lower', l);
    args.push('--rootfs-upper', upper, '--rootfs-work', this.work(t));
    return args;
  }
  override startArgs(t: Target): string[] {
    if (t.record.flat) return super.startArgs(t);
    recoverRoot(t.instDir);
    return this.args(t, rootDir(t));
  }
  override access(t: Target): HostAccess {
    if (t.record.flat) return super.access(t);
    const upper = currentRoot(t.instDir);
    return { root: upper, helperArgs: this.args(t, upper) };
  }
  override async copyRoot(from: Target, to: Target): Promise<void> {
    await super.copyRoot(from, to);
    if (to.record.flat) return;
    this.makeDirs(to, this.layers(to)[0], false);
  }
  /** The upper layer swapped as on dir, and a new work dir with it: a work dir belongs to the upper it was used with. */
  override async restore(t: Target, snapDir: string, snap: string): Promise<RootSwap> {
    const swap = await super.restore(t, snapDir, snap);
    if (t.record.flat) return swap;
    const work = this.work(t);
    const fresh = path.join(t.instDir, `.overlay-work-new-${process.pid}`);
    const old = path.join(t.instDir, `.overlay-work-old-${process.pid}`);
    // Every source must exist until its own rename (how a replay tells what is done).
    fs.mkdirSync(work, { recursive: true, mode: 0o700 });
    fs.rmSync(fresh, { recursive: true, force: true });
    fs.mkdirSync(fresh, { mode: 0o700 });
    return {
      renames: [...swap.renames, [work, old], [fresh, work]],
      leftovers: [...swap.leftovers, old],
      discard: async () => {
        await swap.discard();
        fs.rmSync(old, { recursive: true, force: true });
      },
    };
  }
  override async copyFromSnapshot(from: Target, snapDir: string, snap: string, to: Target): Promise<void> {
    await super.copyFromSnapshot(from, snapDir, snap, to);
    if (to.record.flat) return;
    this.makeDirs(to, this.layers(to)[0], false);
  }
}
