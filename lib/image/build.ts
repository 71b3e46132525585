import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError, errorText } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { writeYamlAtomic, readYamlIfExists } from '../util/yaml.js';
import { run, requireTool } from '../util/exec.js';
import { withLock } from '../util/lock.js';
import { writeFileInRoot } from '../util/rootfs.js';
import type { Paths } from '../state/paths.js';
import { locksDir } from '../state/paths.js';
import type { Recipe } from './recipe.js';
import { buildBusyboxRoot } from './sources/busybox.js';
import { buildDebootstrapRoot } from './sources/debootstrap.js';
import type { ImageMetadata } from './metadata.js';

/** Bump when the builder itself changes what it produces, so old cached builds are not reused. */
const BUILDER_VERSION = 1;

export type Progress = (phase: string, detail?: string) => void;

export interface BuiltImage {
  /** cacheDir/builds/<id>: holds rootfs/ and metadata.yaml */
  dir: string;
  rootfs: string;
  metadata: ImageMetadata;
  key: string;
}

/** The recipe's content hash; a `from:` recipe's includes its parent's fingerprint. */
export function recipeKey(recipe: Recipe, parent?: string): string {
  const { file: _file, given: _given, ...content } = recipe;
  return crypto.createHash('sha256').update(JSON.stringify({ v: BUILDER_VERSION, arch: process.arch, content, ...(parent ? { parent } : {}) })).digest('hex');
}

/** The image a `from:` recipe builds on. */
export interface ParentImage {
  fingerprint: string;
  rootfs: string;
  metadata: ImageMetadata;
}

/**
 * Build a recipe into the host-wide build cache, or reuse an earlier build of the same recipe
 * content. The tree is made in a temp dir and renamed into place only when complete, so an
 * interrupted build never looks finished.
 */
export async function buildRecipe(paths: Paths, recipe: Recipe, progress: Progress = () => {}, parent?: ParentImage): Promise<BuiltImage> {
  if (recipe.source.type === 'image' && !parent) throw new TslxcError(`Cannot build image "${recipe.name}"`, 'its parent image was not resolved');
  const key = recipeKey(recipe, parent?.fingerprint);
  const buildsDir = path.join(paths.cacheDir, 'builds');
  const dir = path.join(buildsDir, `${recipe.name}-${recipe.release}-${key.slice(0, 12)}`);
  const cached = readBuilt(dir, key);
  if (cached) return cached;
  mkdirp(buildsDir, 0o700);
  return withLock(locksDir(paths), `build-${key.slice(0, 16)}`, async () => {
    const again = readBuilt(dir, key);
    if (again) return again;
    const tmp = path.join(buildsDir, `.tmp-${key.slice(0, 12)}-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    mkdirp(tmp, 0o700);
    const rootfs = path.join(tmp, 'rootfs');
    try {
      progress('build', `building image "${recipe.name}" (${recipe.description})`);
      if (recipe.source.type === 'busybox') await buildBusyboxRoot(rootfs);
      else if (recipe.source.type === 'image') {
        progress('unpack', `copying the parent image ${parent!.fingerprint.slice(0, 12)}`);
        await run('cp', ['-a', '--reflink=auto', parent!.rootfs, rootfs], { what: `Cannot copy the parent image ${parent!.fingerprint.slice(0, 12)}` });
      } else await buildDebootstrapRoot(paths, rootfs, recipe.source, progress);
      progress('configure', 'writing files');
      for (const f of recipe.files) writeFileInRoot(rootfs, f.path, f.content, f.mode);
      for (const cmd of recipe.commands) {
        progress('configure', cmd);
        await runInRoot(rootfs, cmd);
      }
      const metadata = makeMetadata(recipe, key, parent);
      writeYamlAtomic(path.join(tmp, 'metadata.yaml'), metadata);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
      progress('done', `image "${recipe.name}" built`);
      return { dir, rootfs: path.join(dir, 'rootfs'), metadata, key };
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (err instanceof TslxcError) throw err;
      throw new TslxcError(`Cannot build image "${recipe.name}"`, errorText(err));
    }
  }, { timeoutMs: 30 * 60_000, purpose: `the build of image "${recipe.name}"` });
}

function readBuilt(dir: string, key: string): BuiltImage | undefined {
  const metadata = readYamlIfExists<ImageMetadata>(path.join(dir, 'metadata.yaml'));
  if (!metadata || metadata.tslxc?.recipe_key !== key || !fs.existsSync(path.join(dir, 'rootfs'))) return undefined;
  return { dir, rootfs: path.join(dir, 'rootfs'), metadata, key };
}

function makeMetadata(recipe: Recipe, key: string, parent?: ParentImage): ImageMetadata {
  const own = (k: string) => !parent || recipe.given.includes(k);
  const pm = parent?.metadata;
  return {
    architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
    creation_date: Math.floor(Date.now() / 1000),
    properties: {
      ...(pm?.properties ?? {}),
      os: own('os') ? recipe.os : pm!.properties.os,
      release: own('release') ? recipe.release : pm!.properties.release,
      description: recipe.description,
      name: recipe.name,
    },
    ...(pm?.templates ? { templates: pm.templates } : {}),
    tslxc: {
      init: own('init') ? recipe.init : pm!.tslxc?.init ?? recipe.init,
      stop_signal: own('stop_signal') ? recipe.stopSignal : pm!.tslxc?.stop_signal ?? recipe.stopSignal,
      environment: { ...(pm?.tslxc?.environment ?? {}), ...recipe.environment },
      recipe_key: key,
      ...(parent ? { parent: parent.fingerprint } : {}),
    },
  };
}

/**
 * Recipe commands run in the new tree with chroot: they are the recipe author's own lines, run at
 * build time with no mounts made (nothing to leak onto the host), and a minimal environment.
 */
async function runInRoot(rootfs: string, cmd: string): Promise<void> {
  const chroot = requireTool('chroot', 'run a recipe command');
  await run(chroot, [rootfs, '/bin/sh', '-c', cmd], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8', HOME: '/root' },
    what: `Recipe command "${cmd}" failed`,
  });
}
