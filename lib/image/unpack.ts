import fs from 'node:fs';
import path from 'node:path';
import { withLock } from '../util/lock.js';
import { writeYamlAtomic } from '../util/yaml.js';
import { locksDir, type Paths } from '../state/paths.js';
import { extractSquashfs, extractTar, isSquashfs } from './archive.js';
import { isLayer, layerChain } from './layers.js';
import { getImage, sweepDead, treeSize, withImagesLock, type Image } from './store.js';

/**
 * An imported image is stored as the archive it came in (original/), and its tree (rootfs/) is
 * unpacked the first time something needs it: a create, a build from it, an export in another
 * format. The archive was listed and checked at import from the very bytes that were stored
 * (lxd.ts), and the store is root's alone, so it is unpacked here without listing it again.
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
        const orig = img.metadata.tslxc!.original!;
        const files = orig.files.map((f) => path.join(img.dir, 'original', f));
        const what = `image ${fp.slice(0, 12)}`;
        const root = path.join(tmp, 'rootfs');
        if (orig.kind === 'unified') {
          await extractTar(files[0], tmp, what);
          if (!fs.existsSync(root)) fs.mkdirSync(root, { mode: 0o755 });
        } else if (isSquashfs(files[1])) {
          await extractSquashfs(files[1], root, what);
        } else {
          fs.mkdirSync(root, { mode: 0o755 });
          await extractTar(files[1], root, what);
        }
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
