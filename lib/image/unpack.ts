import fs from 'node:fs';
import path from 'node:path';
import { withLock } from '../util/lock.js';
import { writeYamlAtomic } from '../util/yaml.js';
import { locksDir, type Paths } from '../state/paths.js';
import { TslxcError } from '../errors.js';
import { run } from '../util/exec.js';
import { extractSquashfsArgv, extractTarArgv, isSquashfs } from './archive.js';
import { isLayer, layerChain } from './layers.js';
import { getImage, sweepDead, treeSize, withImagesLock, type Image } from './store.js';

/**
 * An imported image is stored as the archive it came in (original/), and its tree (rootfs/) is
 * unpacked the first time something needs it: an overlay or btrfs pool, a build from it, an export
 * in another format. A dir pool needs no tree in the store: its containers' roots (and spares) are
 * unpacked straight from the archive (unpackOriginal), so the tree is written once, as LXD's dir
 * driver does. The archive was listed and checked at import from the very bytes that were stored
 * (lxd.ts), and the store is root's alone, so it is unpacked without listing it again.
 */
export function isPacked(img: Image): boolean {
  return !!img.metadata.tslxc?.original && !fs.existsSync(img.rootfs);
}

/** The image with its tree (and, for a layer, every tree under it) on disk; unpacks what is not. */
export async function ensureUnpacked(p: Paths, img: Image, progress?: (phase: string, detail?: string) => void): Promise<Image> {
  const todo = (isLayer(img) ? layerChain(p, img) : [img]).filter(isPacked);
  for (const i of todo) {
    progress?.('unpack', `unpacking image ${i.fingerprint.slice(0, 12)}`);
    await unpack(p, i);
  }
  return todo.length ? (getImage(p, img.fingerprint) ?? img) : img;
}

/**
 * Unpacks into IMAGE/.unpack-PID and renames the tree into place only when complete: two creates
 * of one image wait on one lock and the second finds the tree there; a killed unpack leaves only
 * its temp dir, which the next one removes.
 */
async function unpack(p: Paths, img: Image): Promise<void> {
  const fp = img.fingerprint;
  const added = await withLock(
    locksDir(p),
    `image-unpack-${fp.slice(0, 16)}`,
    async () => {
      if (fs.existsSync(img.rootfs)) return undefined;
      try {
        sweepDead(img.dir, /^\.unpack-(\d+)$/);
      } catch {
        /* a killed tslxc's tar may still be writing there: the next unpack removes it */
      }
      const tmp = path.join(img.dir, `.unpack-${process.pid}`);
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { mode: 0o700 });
      try {
        const root = await unpackOriginal(img, tmp, (c, a, what) => run(c, a, { what }));
        const size = await treeSize(root);
        fs.renameSync(root, img.rootfs);
        return size;
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    },
    { purpose: `the unpacking of image ${fp.slice(0, 12)}`, timeoutMs: 30 * 60_000 },
  );
  if (added === undefined) return;
  // The size is what the image takes in the store: the tree now counts too (spares check room by it).
  await withImagesLock(p, async () => {
    const cur = getImage(p, fp);
    if (!cur) return;
    cur.metadata.tslxc = { ...(cur.metadata.tslxc ?? {}), size: (cur.metadata.tslxc?.size ?? 0) + added };
    writeYamlAtomic(path.join(cur.dir, 'metadata.yaml'), cur.metadata);
  });
}

/**
 * How an image's original files become a tree at DIR/rootfs (DIR new and empty): the one command
 * that unpacks them, and whether DIR/rootfs is made first (a split image's rootfs tarball has no
 * rootfs/ prefix; a unified tarball's own rootfs/ entry gives the root its owner and mode).
 */
export interface UnpackPlan {
  argv: string[];
  makeRoot: boolean;
}

export function unpackPlan(img: Image, dir: string): UnpackPlan {
  const orig = img.metadata.tslxc?.original;
  const files = (orig?.files ?? []).map((f) => path.join(img.dir, 'original', f));
  if (!orig || !files.length || !files.every((f) => fs.existsSync(f)))
    throw new TslxcError(`Cannot unpack image ${img.fingerprint.slice(0, 12)}`, 'its stored archive is gone (was the image deleted meanwhile?)');
  const root = path.join(dir, 'rootfs');
  if (orig.kind === 'unified') return { argv: extractTarArgv(files[0], dir), makeRoot: false };
  if (isSquashfs(files[1])) return { argv: extractSquashfsArgv(files[1], root), makeRoot: false };
  return { argv: extractTarArgv(files[1], root), makeRoot: true };
}

/**
 * Unpacks a packed image's archive into DIR/rootfs (DIR new and empty) with `exec` (a plain run,
 * or a pool's, which names a full pool) and returns that path. The caller renames it into place.
 */
export async function unpackOriginal(img: Image, dir: string, exec: (cmd: string, args: string[], what: string) => Promise<void>): Promise<string> {
  const plan = unpackPlan(img, dir);
  const root = path.join(dir, 'rootfs');
  if (plan.makeRoot) fs.mkdirSync(root, { mode: 0o755 });
  const what = `Cannot unpack image ${img.fingerprint.slice(0, 12)}`;
  try {
    await exec(plan.argv[0], plan.argv.slice(1), what);
  } catch (err) {
    // A full pool is said as such by `exec`; anything else tar or unsquashfs says is about the archive.
    if (err instanceof TslxcError && err.message.startsWith(what))
      throw new TslxcError(err.message, undefined, 'if its archive is damaged, delete the image and import it again');
    throw err;
  }
  if (!fs.existsSync(root)) fs.mkdirSync(root, { mode: 0o755 });
  return root;
}
