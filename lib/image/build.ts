import { spawnSync } from 'node:child_process';
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
import type { Progress } from './progress.js';
import { getImage, sweepDead } from './store.js';
import { canLayerOn, cleanLayer, layerDirs, runOnOverlay } from './layers.js';
import { helperError, helperPath } from '../state/helper.js';

/** Bump when the builder itself changes what it produces, so old cached builds are not reused. */
const BUILDER_VERSION = 1;

export interface BuiltImage {
  /** cacheDir/builds/<id>: holds rootfs/ and metadata.yaml */
  dir: string;
  rootfs: string;
  metadata: ImageMetadata;
  key: string;
}

/**
 * The recipe's content hash; a `from:` recipe's includes its parent's fingerprint, and whether it
 * is built as a layer (so a whole tree cached by an older tslxc is not taken for a layer).
 */
export function recipeKey(recipe: Recipe, parent?: string, layer = false): string {
  const { file: _file, given: _given, ...content } = recipe;
  return crypto
    .createHash('sha256')
    .update(JSON.stringify({ v: BUILDER_VERSION, arch: process.arch, content, ...(parent ? { parent } : {}), ...(layer ? { layer } : {}) }))
    .digest('hex');
}

/** Whether a `from:` recipe on this parent is built as a layer (unless the stack is too deep). */
export function buildsLayer(paths: Paths, parent?: ParentImage): boolean {
  const img = parent && getImage(paths, parent.fingerprint);
  return !!img && canLayerOn(paths, img);
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
  const layer = recipe.source.type === 'image' && buildsLayer(paths, parent);
  const key = recipeKey(recipe, parent?.fingerprint, layer);
  const buildsDir = path.join(paths.cacheDir, 'builds');
  const dir = path.join(buildsDir, `${recipe.name}-${recipe.release}-${key.slice(0, 12)}`);
  const cached = readBuilt(dir, key);
  if (cached) return cached;
  mkdirp(buildsDir, 0o700);
  return withLock(
    locksDir(paths),
    `build-${key.slice(0, 16)}`,
    async () => {
      const again = readBuilt(dir, key);
      if (again) return again;
      sweepDead(buildsDir, new RegExp(`^\\.tmp-${key.slice(0, 12)}-(\\d+)$`));
      const tmp = path.join(buildsDir, `.tmp-${key.slice(0, 12)}-${process.pid}`);
      fs.rmSync(tmp, { recursive: true, force: true });
      mkdirp(tmp, 0o700);
      const rootfs = path.join(tmp, 'rootfs');
      try {
        progress('build', `building image "${recipe.name}" (${recipe.description})`);
        if (layer) {
          progress('unpack', `stacking a layer on the parent image ${parent!.fingerprint.slice(0, 12)}`);
          await buildLayer(paths, tmp, recipe, parent!, progress);
        } else {
          if (recipe.source.type === 'busybox') await buildBusyboxRoot(rootfs);
          else if (recipe.source.type === 'image') {
            // Too deep a stack for one more layer: a whole copy of the parent's tree.
            progress('unpack', `copying the parent image ${parent!.fingerprint.slice(0, 12)}`);
            const lowers = layerDirs(paths, getImage(paths, parent!.fingerprint)!);
            fs.mkdirSync(path.join(tmp, 'merged'));
            await runOnOverlay(
              { lowers },
              path.join(tmp, 'merged'),
              'cp',
              ['-a', '--reflink=auto', path.join(tmp, 'merged'), rootfs],
              `Cannot copy the parent image ${parent!.fingerprint.slice(0, 12)}`,
            );
            fs.rmdirSync(path.join(tmp, 'merged'));
          } else await buildDebootstrapRoot(paths, rootfs, recipe.source, progress, mirrorHelp(recipe));
          progress('configure', 'writing files');
          for (const f of recipe.files) writeFileInRoot(rootfs, f.path, f.content, f.mode);
          for (const cmd of recipe.commands) {
            progress('configure', cmd);
            await runInRoot(rootfs, cmd);
          }
        }
        const metadata = makeMetadata(recipe, key, parent, layer);
        writeYamlAtomic(path.join(tmp, 'metadata.yaml'), metadata);
        fs.rmSync(dir, { recursive: true, force: true });
        fs.renameSync(tmp, dir);
        pruneBuilds(buildsDir, dir);
        progress('done', `image "${recipe.name}" built`);
        return { dir, rootfs: path.join(dir, 'rootfs'), metadata, key };
      } catch (err) {
        fs.rmSync(tmp, { recursive: true, force: true });
        if (err instanceof TslxcError) throw err;
        throw new TslxcError(`Cannot build image "${recipe.name}"`, errorText(err));
      }
    },
    { timeoutMs: 30 * 60_000, purpose: `the build of image "${recipe.name}"` },
  );
}

function readBuilt(dir: string, key: string): BuiltImage | undefined {
  const metadata = readYamlIfExists<ImageMetadata>(path.join(dir, 'metadata.yaml'));
  if (!metadata || metadata.tslxc?.recipe_key !== key || !fs.existsSync(path.join(dir, 'rootfs'))) return undefined;
  markUsed(dir);
  return { dir, rootfs: path.join(dir, 'rootfs'), metadata, key };
}

/**
 * Unused cached builds expire, as LXD's cached remote images do (images.remote_cache_expiry, 10
 * days): each recipe change (a tslxc upgrade, an edited recipe) leaves its old ~180 MiB Debian tree
 * behind, and nothing would ever read it again. A build's dir mtime is its last use (made, or
 * taken from the cache); the sweep runs after each new build. The image store holds its own links
 * to the files, so images already added from a build are not touched.
 */
export const BUILD_CACHE_EXPIRY_MS = 10 * 24 * 3600_000;

function markUsed(dir: string): void {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    /* a read-only cache still serves */
  }
}

export function pruneBuilds(buildsDir: string, keep: string, now = Date.now()): string[] {
  const removed: string[] = [];
  for (const e of fs.readdirSync(buildsDir)) {
    const dir = path.join(buildsDir, e);
    if (e.startsWith('.') || dir === keep) continue; // temp dirs of running builds: sweepDead's
    try {
      if (now - fs.statSync(dir).mtimeMs < BUILD_CACHE_EXPIRY_MS) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(e);
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}

/**
 * A `from:` recipe built as a layer: an overlay of the parent's layers with the new layer
 * (tmp/rootfs) as its upper dir, mounted only in the mount namespaces of the helper (files) and
 * of each command; what the recipe writes, changes and deletes lands in the layer, as overlayfs
 * records it (copies, whiteouts, opaque dirs).
 */
async function buildLayer(paths: Paths, tmp: string, recipe: Recipe, parent: ParentImage, progress: Progress): Promise<void> {
  const lowers = layerDirs(paths, getImage(paths, parent.fingerprint)!);
  const upper = path.join(tmp, 'rootfs');
  const work = path.join(tmp, 'work');
  const mnt = path.join(tmp, 'merged');
  const top = fs.statSync(lowers[0]);
  fs.mkdirSync(upper);
  fs.chownSync(upper, top.uid, top.gid);
  fs.chmodSync(upper, top.mode & 0o7777);
  fs.mkdirSync(work, { mode: 0o700 });
  fs.mkdirSync(mnt, { mode: 0o755 });
  const overlay = [...lowers.flatMap((l) => ['--rootfs-lower', l]), '--rootfs-upper', upper, '--rootfs-work', work];
  progress('configure', 'writing files');
  for (const f of recipe.files) {
    const r = spawnSync(helperPath(), ['file', '--rootfs', mnt, ...overlay, '--write', f.path, '--mode', f.mode.toString(8), '--mkdir'], {
      input: f.content,
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new TslxcError(`Cannot write ${f.path} in image "${recipe.name}"`, helperError(r.stderr ?? ''));
  }
  const chroot = requireTool('chroot', 'run a recipe command');
  for (const cmd of recipe.commands) {
    progress('configure', cmd);
    await runOnOverlay({ lowers, upper, work }, mnt, chroot, [mnt, '/bin/sh', '-c', cmd], `Recipe command "${cmd}" failed`, (c, a, what) =>
      run(c, a, { env: RECIPE_ENV, what }),
    );
  }
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmdirSync(mnt);
  await cleanLayer(upper);
}

/** What an unreachable mirror's error names besides another --mirror. */
function mirrorHelp(recipe: Recipe): { os: string; alternatives: string } {
  const os = recipe.os.charAt(0).toUpperCase() + recipe.os.slice(1);
  const remote = recipe.remote ? `a remote image ("tslxc launch ${recipe.remote} NAME" with a reachable remote) ` : '';
  return { os, alternatives: `${remote}${remote ? 'or ' : 'or '}an imported image ("tslxc image import FILE --alias ${recipe.name}")` };
}

const RECIPE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C.UTF-8', HOME: '/root' };

function makeMetadata(recipe: Recipe, key: string, parent?: ParentImage, layer = false): ImageMetadata {
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
      init: own('init') ? recipe.init : (pm!.tslxc?.init ?? recipe.init),
      stop_signal: own('stop_signal') ? recipe.stopSignal : (pm!.tslxc?.stop_signal ?? recipe.stopSignal),
      environment: { ...(pm?.tslxc?.environment ?? {}), ...recipe.environment },
      recipe_key: key,
      ...(parent ? { parent: parent.fingerprint } : {}),
      ...(layer ? { layer: true } : {}),
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
    env: RECIPE_ENV,
    what: `Recipe command "${cmd}" failed`,
  });
}
