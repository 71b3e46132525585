import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { run } from '../util/exec.js';
import { withLock } from '../util/lock.js';
import { validateAlias } from '../util/names.js';
import { pidAlive } from '../util/proc.js';
import { needTls } from '../util/tls.js';
import { imagesDir, locksDir, type Paths } from '../state/paths.js';
import { buildRecipe, buildsLayer, recipeKey, type Progress } from './build.js';
import type { ImageMetadata } from './metadata.js';
import { findRecipe, loadRecipe, type RecipeOptions } from './recipe.js';

/**
 * The local image store: TSLXC_DIR/images/<fingerprint>/{rootfs/, metadata.yaml} and an alias
 * table. Images are read-only once stored; containers copy from them.
 */
export interface Image {
  fingerprint: string;
  dir: string;
  rootfs: string;
  metadata: ImageMetadata;
  aliases: string[];
}

const aliasesFile = (p: Paths) => path.join(imagesDir(p), 'aliases.yaml');

export function readAliases(p: Paths): Record<string, string> {
  return readYamlIfExists<Record<string, string>>(aliasesFile(p)) ?? {};
}

export function writeAliases(p: Paths, table: Record<string, string>): void {
  mkdirp(imagesDir(p), 0o700);
  writeYamlAtomic(aliasesFile(p), table);
}

/** One lock for every change to the store (new image, alias, delete). */
export function withImagesLock<T>(p: Paths, fn: () => Promise<T>): Promise<T> {
  return withLock(locksDir(p), 'images', fn, { purpose: 'the image store', timeoutMs: 10 * 60_000 });
}

/** Like findImage, but a missing image is an error that says where to look. */
export function requireImage(p: Paths, ref: string): Image {
  const img = findImage(p, ref);
  if (!img) throw new TslxcError(`Image "${ref}" not found`, undefined, 'see "tslxc image list"');
  return img;
}

/**
 * Adds an image made by `fill` (which writes rootfs/ and anything else into the dir it is given)
 * under `fingerprint`. The dir is made inside the store and renamed into place only when complete,
 * so a failure or a crash never leaves a partial image.
 */
export async function addImage(
  p: Paths,
  fingerprint: string,
  fill: (tmp: string) => Promise<ImageMetadata>,
  aliases: string[] = [],
): Promise<{ image: Image; existed: boolean }> {
  aliases.forEach(validateAlias);
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) throw new TslxcError(`Invalid fingerprint "${fingerprint.slice(0, 70)}"`);
  return withImagesLock(p, async () => {
    sweepDead(imagesDir(p), /^\.(tmp|publish|del)-.+-(\d+)$/);
    const dir = path.join(imagesDir(p), fingerprint);
    const existed = !!getImage(p, fingerprint);
    if (!existed) {
      mkdirp(imagesDir(p), 0o700);
      const tmp = path.join(imagesDir(p), `.tmp-${fingerprint.slice(0, 12)}-${process.pid}`);
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { mode: 0o700 });
      try {
        const metadata = await fill(tmp);
        metadata.tslxc = { ...(metadata.tslxc ?? {}), size: await treeSize(tmp) };
        writeYamlAtomic(path.join(tmp, 'metadata.yaml'), metadata);
        fs.renameSync(tmp, dir);
      } catch (err) {
        fs.rmSync(tmp, { recursive: true, force: true });
        throw err;
      }
    }
    const table = readAliases(p);
    for (const a of aliases) table[a] = fingerprint;
    if (aliases.length) writeAliases(p, table);
    return { image: getImage(p, fingerprint)!, existed };
  });
}

/**
 * What a killed tslxc left half-made in `dir`: temp dirs named ...-PID whose process is gone
 * (a build, import or publish in progress is never listed, and is removed here by the next one).
 */
export function sweepDead(dir: string, pattern: RegExp): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = pattern.exec(e);
    if (m && Number(m[m.length - 1]) !== process.pid && !pidAlive(Number(m[m.length - 1]))) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

/** Bytes used by a tree (du's count of allocated blocks, hard links once). */
export async function treeSize(dir: string): Promise<number> {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('du', ['-s', '-B1', '-x', dir], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split(/\s/)[0]) : 0;
}

/** An image's size: recorded when it was stored. */
export function imageSize(img: Image): number | undefined {
  return img.metadata.tslxc?.size;
}

export function getImage(p: Paths, fingerprint: string): Image | undefined {
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) return undefined;
  const dir = path.join(imagesDir(p), fingerprint);
  const metadata = readYamlIfExists<ImageMetadata>(path.join(dir, 'metadata.yaml'));
  if (!metadata) return undefined;
  const aliases = Object.entries(readAliases(p)).filter(([, f]) => f === fingerprint).map(([a]) => a);
  return { fingerprint, dir, rootfs: path.join(dir, 'rootfs'), metadata, aliases };
}

export function listImages(p: Paths): Image[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(imagesDir(p));
  } catch {
    return [];
  }
  return entries.map((f) => getImage(p, f)).filter((i): i is Image => !!i);
}

/** An alias, a full fingerprint, or a unique fingerprint prefix. */
export function findImage(p: Paths, ref: string): Image | undefined {
  const byAlias = readAliases(p)[ref];
  if (byAlias) return getImage(p, byAlias);
  if (/^[0-9a-f]{1,64}$/.test(ref)) {
    const matches = listImages(p).filter((i) => i.fingerprint.startsWith(ref));
    if (matches.length > 1) throw new TslxcError(`Image "${ref}" is ambiguous`, `${matches.length} fingerprints start with it`, 'give more digits');
    return matches[0];
  }
  return undefined;
}

/**
 * What `create debian dev1` means: an image from the store by alias or fingerprint, or else the
 * built-in recipe of that name, built (or taken from the build cache) and stored under that alias.
 * A recipe that names a `remote:` (ubuntu) resolves its bare name through that remote instead,
 * as LXD does through its default remote, unless a --mirror asks for the recipe (or `image build`).
 */
export async function resolveImage(p: Paths, ref: string, opts: RecipeOptions = {}, progress?: Progress, depth = 0): Promise<Image> {
  if (depth > 16) throw new TslxcError(`Cannot build image "${ref}"`, 'its recipes\' "from:" chain is longer than 16 or loops');
  if (ref.includes(':')) {
    const { parseRemoteRef, pullRemoteImage } = await import('./remote.js');
    if (parseRemoteRef(p, ref)) {
      needTls();
      return pullRemoteImage(p, ref, { progress });
    }
  }
  const explicitRecipeOptions = opts.release !== undefined || opts.mirror !== undefined;
  if (!explicitRecipeOptions && !opts.build) {
    const stored = findImage(p, ref);
    if (stored) return stored;
  }
  const recipeFile = findRecipe(ref);
  if (!recipeFile) {
    throw new TslxcError(`Image "${ref}" not found`, 'it is neither in the image store nor a built-in recipe', 'see "tslxc image list" and the recipes in templates/');
  }
  const recipe = loadRecipe(recipeFile, opts);
  if (recipe.remote && !opts.build && opts.mirror === undefined && !ref.endsWith('.yaml') && !ref.endsWith('.yml')) {
    return resolveThroughRemote(p, ref, recipe.name, recipe.release, recipe.remote, progress);
  }
  // A `from:` recipe builds on its parent, which may itself be built first from its recipe.
  const parent = recipe.source.type === 'image' ? await resolveImage(p, recipe.source.from, {}, progress, depth + 1) : undefined;
  const fingerprint = recipeKey(recipe, parent?.fingerprint, recipe.source.type === 'image' && buildsLayer(p, parent));
  const existing = getImage(p, fingerprint);
  if (existing) return existing;
  needTls(); // the build may fetch (debootstrap's mirror check, a recipe's downloads)
  const built = await buildRecipe(p, recipe, progress, parent);
  const alias = ref.endsWith('.yaml') || ref.endsWith('.yml') ? recipe.name : ref;
  const release = parent && !recipe.given.includes('release') ? built.metadata.properties.release : recipe.release;
  return storeBuiltImage(p, fingerprint, built.rootfs, built.metadata, explicitRecipeOptions ? [`${recipe.name}/${release}`] : [alias, `${recipe.name}/${release}`], progress);
}

/**
 * A bare name that resolves through a remote (`launch ubuntu` → images:ubuntu/noble): the image
 * stored under NAME/RELEASE when there is one, else the remote's, stored under NAME (without
 * --release) and NAME/RELEASE. A remote that cannot serve it is one line naming the other ways.
 */
async function resolveThroughRemote(p: Paths, ref: string, name: string, release: string, remoteRef: string, progress?: Progress): Promise<Image> {
  const stored = findImage(p, `${name}/${release}`);
  if (stored) return stored;
  needTls();
  const { pullRemoteImage } = await import('./remote.js');
  const aliases = ref === name ? [name, `${name}/${release}`] : [`${name}/${release}`];
  try {
    return await pullRemoteImage(p, remoteRef, { progress, aliases });
  } catch (err) {
    if (!(err instanceof TslxcError)) throw err;
    const os = name.charAt(0).toUpperCase() + name.slice(1);
    throw new TslxcError(
      `Cannot get image "${ref}" from ${remoteRef}`,
      err.message.replace(/ \([^()]*\)$/, ''),
      `build it from a reachable ${os} mirror with --mirror URL, point the remote at a reachable server ("tslxc remote add"), or import an image ("tslxc image import FILE --alias ${name}")`,
    );
  }
}

async function storeBuiltImage(p: Paths, fingerprint: string, rootfs: string, metadata: ImageMetadata, aliases: string[], progress?: Progress): Promise<Image> {
  const { image } = await addImage(
    p,
    fingerprint,
    async (tmp) => {
      progress?.('unpack', 'adding the image to the store');
      await copyTree(rootfs, path.join(tmp, 'rootfs'), { hardlink: true });
      return metadata;
    },
    aliases,
  );
  return image;
}

/**
 * Copy a tree preserving owners, modes, links, xattrs. `hardlink` shares the files instead when the
 * source is an immutable build output on the same filesystem; reflinks are used where the
 * filesystem has them (btrfs, xfs).
 */
export async function copyTree(src: string, dst: string, opts: { hardlink?: boolean } = {}): Promise<void> {
  const args = opts.hardlink ? ['-al', src, dst] : ['-a', '--reflink=auto', src, dst];
  try {
    await run('cp', args, { what: `Cannot copy ${src}` });
  } catch (err) {
    if (!opts.hardlink) throw err;
    fs.rmSync(dst, { recursive: true, force: true });
    await run('cp', ['-a', '--reflink=auto', src, dst], { what: `Cannot copy ${src}` });
  }
}
