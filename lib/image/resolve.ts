import path from 'node:path';
import { TslxcError } from '../errors.js';
import { needTls } from '../util/tls.js';
import type { Paths } from '../state/paths.js';
import { buildRecipe, buildsLayer, recipeKey } from './build.js';
import type { Progress } from './progress.js';
import type { ImageMetadata } from './metadata.js';
import { findRecipe, loadRecipe, type RecipeOptions } from './recipe.js';
import { addImage, copyTree, findImage, getImage, type Image } from './store.js';
import { ensureUnpacked } from './unpack.js';

/**
 * What `create debian dev1` means: an image from the store by alias or fingerprint, or else the
 * built-in recipe of that name, built (or taken from the build cache) and stored under that alias.
 * A recipe that names a `remote:` (ubuntu) resolves its bare name through that remote instead,
 * as LXD does through its default remote, unless a --mirror asks for the recipe (or `image build`).
 * An imported image may come back packed (unpack.ts): the storage driver that makes a container's
 * root from it unpacks what it needs, into the store or straight into the container.
 */
export async function resolveImage(p: Paths, ref: string, opts: RecipeOptions = {}, progress?: Progress): Promise<Image> {
  return findOrMakeImage(p, ref, opts, progress, 0);
}

async function findOrMakeImage(p: Paths, ref: string, opts: RecipeOptions, progress: Progress | undefined, depth: number): Promise<Image> {
  if (depth > 16) throw new TslxcError(`Cannot build image "${ref}"`, 'its recipes\' "from:" chain is longer than 16 or loops');
  if (ref.includes(':')) {
    // Loaded lazily for the CLI's start-up: create and launch of a stored image or a recipe do not
    // load the remote client (nor the LXD import and image management it brings).
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
    throw new TslxcError(
      `Image "${ref}" not found`,
      'it is neither in the image store nor a built-in recipe',
      'see "tslxc image list" and the recipes in templates/',
    );
  }
  const recipe = loadRecipe(recipeFile, opts);
  if (recipe.remote && !opts.build && opts.mirror === undefined && !ref.endsWith('.yaml') && !ref.endsWith('.yml')) {
    return resolveThroughRemote(p, ref, recipe.name, recipe.release, recipe.remote, progress);
  }
  // A `from:` recipe builds on its parent, which may itself be built first from its recipe.
  const parent =
    recipe.source.type === 'image' ? await ensureUnpacked(p, await findOrMakeImage(p, recipe.source.from, {}, progress, depth + 1), progress) : undefined;
  const fingerprint = recipeKey(recipe, parent?.fingerprint, recipe.source.type === 'image' && buildsLayer(p, parent));
  const existing = getImage(p, fingerprint);
  if (existing) return existing;
  needTls(); // the build may fetch (debootstrap's mirror check, a recipe's downloads)
  const built = await buildRecipe(p, recipe, progress, parent);
  const alias = ref.endsWith('.yaml') || ref.endsWith('.yml') ? recipe.name : ref;
  const release = parent && !recipe.given.includes('release') ? built.metadata.properties.release : recipe.release;
  return storeBuiltImage(
    p,
    fingerprint,
    built.rootfs,
    built.metadata,
    explicitRecipeOptions ? [`${recipe.name}/${release}`] : [alias, `${recipe.name}/${release}`],
    progress,
  );
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
  const { pullRemoteImage } = await import('./remote.js'); // lazily, as in resolveImage
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
