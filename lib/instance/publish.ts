import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { findTool, requireTool, run } from '../util/exec.js';
import { validateAlias } from '../util/names.js';
import { imagesDir, type Paths } from '../state/paths.js';
import type { Context } from '../state/context.js';
import { loadConfig, type InstanceConfig } from '../state/config.js';
import { instanceState } from './status.js';
import { withFrozen } from './snapshot.js';
import { hostAccess, target } from '../storage/instance.js';
import { onDiskMap, VOLATILE_CURRENT } from './idmap.js';
import { shiftTree } from '../storage/shift.js';
import { addImage, getImage, type Image } from '../image/store.js';
import { canLayerOn, cleanLayer, layerDirs, runOnOverlay } from '../image/layers.js';
import type { ImageMetadata } from '../image/metadata.js';
import type { Progress } from '../image/progress.js';

/**
 * `publish NAME`: a container's root becomes an image whose parent is the container's image,
 * stored as a layer over it (only what the container changed): an overlay container's upper dir
 * is that layer already; a dir or btrfs container's tree is synced (rsync) into an overlay of the
 * parent's layers, so overlayfs records the differences (copies, whiteouts) in the new layer. A
 * container whose image is gone, or whose parent's stack is already MAX_LAYERS deep, is stored
 * whole with its parent still recorded. A running container needs `force`: it is frozen for the
 * copy. The fingerprint is the sha256 of a deterministic tar of the stored tree plus the metadata
 * (which names the parent), so it names the content.
 */
export async function publishInstance(
  ctx: Context,
  name: string,
  opts: { aliases?: string[]; force?: boolean; description?: string; progress?: Progress } = {},
): Promise<Image> {
  const aliases = opts.aliases ?? [];
  aliases.forEach(validateAlias);
  fs.mkdirSync(imagesDir(ctx.paths), { recursive: true, mode: 0o700 });
  const staging = path.join(imagesDir(ctx.paths), `.publish-${name}-${process.pid}`);
  try {
    const { cfg, layer } = await ctx.withInstanceLock(name, async () => {
      const cfg = loadConfig(ctx.paths, name);
      const state = await instanceState(ctx, cfg);
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(staging, { mode: 0o700 });
      const dst = path.join(staging, 'rootfs');
      const running = state.status === 'Running' || state.status === 'Frozen';
      if (running) {
        if (!opts.force)
          throw new TslxcError(`Cannot publish "${name}"`, `it is ${state.status.toLowerCase()}`, 'stop it first, or use --force to freeze it for the copy');
        if (!state.initPid) throw new TslxcError(`Cannot publish "${name}"`, 'its init process is not known');
      } else if (state.status !== 'Stopped' && state.status !== 'Created') {
        throw new TslxcError(`Cannot publish "${name}"`, `it is in state ${state.status}${state.reason ? ` (${state.reason})` : ''}`);
      }
      const parent = getImage(ctx.paths, cfg.image.fingerprint);
      // Files shifted on disk (a filesystem without idmapped mounts) differ from the image's in
      // every owner: such a root is stored whole, and unshifted below.
      const onDisk = onDiskMap(cfg.config);
      const how = onDisk ? 'whole' : publishMethod(ctx, name, parent);
      // An unprivileged container's root seen through its init is idmapped (host ids shifted into
      // its range): the stored tree is read instead, whose ids are the image's.
      const liveRoot = running && cfg.config?.[VOLATILE_CURRENT] === undefined ? `/proc/${state.initPid}/root` : undefined;
      opts.progress?.('copy', how === 'whole' ? `copying the root of "${name}"` : `storing what "${name}" changed in its image`);
      const copy = async () => {
        if (how === 'upper') await copyUpper(ctx, name, dst);
        else if (how === 'sync') await syncOnParent(ctx, name, parent!, staging, liveRoot);
        else if (liveRoot) {
          // Only the root filesystem: /proc, /sys, /dev, /run and other mounts inside stay empty.
          fs.mkdirSync(dst);
          await run('cp', ['-a', '-x', '--reflink=auto', `${liveRoot}/.`, dst], { what: `Cannot copy the root of "${name}"` });
        } else await copyStoppedRoot(ctx, name, staging, dst);
      };
      // Frozen with the marker a snapshot leaves, so a publish killed mid-copy is thawed by the next
      // command that takes the container's lock; an already frozen container stays as it was.
      if (running && state.status === 'Running') await withFrozen(ctx, name, copy);
      else await copy();
      if (how !== 'whole') await cleanLayer(dst);
      if (onDisk) shiftTree(dst, onDisk, undefined);
      return { cfg, layer: how !== 'whole' };
    });
    const meta = publishedMetadata(ctx.paths, cfg, opts.description, layer);
    opts.progress?.('configure', 'computing the fingerprint');
    const fingerprint = await treeDigest(path.join(staging, 'rootfs'), meta);
    const parent = getImage(ctx.paths, cfg.image.fingerprint);
    const { image } = await addImage(
      ctx.paths,
      fingerprint,
      async (tmp) => {
        fs.renameSync(path.join(staging, 'rootfs'), path.join(tmp, 'rootfs'));
        if (parent && fs.existsSync(path.join(parent.dir, 'templates')))
          await run('cp', ['-a', path.join(parent.dir, 'templates'), path.join(tmp, 'templates')], { what: 'Cannot copy the templates' });
        return meta;
      },
      aliases,
    );
    return image;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * How a container's root becomes an image: its overlay upper dir (already the difference from its
 * image), a sync onto its image's layers, or a whole copy.
 */
function publishMethod(ctx: Context, name: string, parent: Image | undefined): 'upper' | 'sync' | 'whole' {
  if (!parent || !canLayerOn(ctx.paths, parent)) return 'whole';
  const t = target(ctx, name);
  if (t.pool.driver === 'overlay' && !t.record.flat && t.record.image === parent.fingerprint) return 'upper';
  return findTool('rsync') ? 'sync' : 'whole';
}

async function copyUpper(ctx: Context, name: string, dst: string): Promise<void> {
  const upper = hostAccess(ctx, name).root;
  await run('cp', ['-a', upper, dst], { what: `Cannot copy the root of "${name}"` });
}

/**
 * A whole tree (a dir or btrfs root, or a running container's root) synced onto an overlay of
 * its image's layers whose upper dir becomes the new layer: files that differ (by content:
 * --checksum) are copied up, files that are gone get whiteouts. Runs in a mount namespace of its
 * own (-x: a running container's /proc, /dev, /run and disks are not crossed into).
 */
async function syncOnParent(ctx: Context, name: string, parent: Image, staging: string, liveRoot?: string): Promise<void> {
  const src = liveRoot ?? hostAccess(ctx, name).root;
  const upper = path.join(staging, 'rootfs');
  const work = path.join(staging, 'work');
  const mnt = path.join(staging, 'merged');
  const lowers = layerDirs(ctx.paths, parent);
  const top = fs.statSync(lowers[0]);
  fs.mkdirSync(upper);
  fs.chownSync(upper, top.uid, top.gid);
  fs.chmodSync(upper, top.mode & 0o7777);
  fs.mkdirSync(work, { mode: 0o700 });
  fs.mkdirSync(mnt);
  await runOnOverlay(
    { lowers, upper, work },
    mnt,
    requireTool('rsync', 'publish a container'),
    ['-aHAXx', '--checksum', '--delete', '--numeric-ids', `${src}/`, `${mnt}/`],
    `Cannot copy the root of "${name}"`,
  );
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmdirSync(mnt);
}

async function copyStoppedRoot(ctx: Context, name: string, staging: string, dst: string): Promise<void> {
  const acc = hostAccess(ctx, name);
  if (!acc.helperArgs) {
    fs.mkdirSync(dst);
    await run('cp', ['-a', '--reflink=auto', `${acc.root}/.`, dst], { what: `Cannot copy the root of "${name}"` });
    return;
  }
  const lowers: string[] = [];
  let upper: string | undefined;
  for (let i = 0; i < acc.helperArgs.length; i++) {
    if (acc.helperArgs[i] === '--rootfs-lower') lowers.push(acc.helperArgs[++i]);
    else if (acc.helperArgs[i] === '--rootfs-upper') upper = acc.helperArgs[++i];
  }
  if (!upper || !lowers.length) throw new TslxcError(`Cannot publish "${name}"`, 'its overlay layers are not known');
  for (const d of [upper, ...lowers])
    if (d.includes(':') || d.includes(',')) throw new TslxcError(`Cannot publish "${name}"`, `layer path ${d} has a ":" or ","`);
  const mnt = path.join(staging, 'merged');
  fs.mkdirSync(mnt);
  fs.mkdirSync(dst);
  // The upper as the top lower layer of a read-only overlay: its whiteouts and opaque dirs hide
  // what they hide inside the container. The mount lives and dies in a private mount namespace.
  const unshare = requireTool('unshare', 'publish an overlay container');
  await run(
    unshare,
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t overlay tslxc-publish -o "ro,lowerdir=$1" "$2" && cp -a "$2/." "$3"',
      'sh',
      [upper, ...lowers].join(':'),
      mnt,
      dst,
    ],
    {
      what: `Cannot copy the root of "${name}"`,
    },
  );
  fs.rmdirSync(mnt);
}

function publishedMetadata(p: Paths, cfg: InstanceConfig, description?: string, layer = false): ImageMetadata {
  const parent = getImage(p, cfg.image.fingerprint);
  const pm = parent?.metadata;
  return {
    architecture: pm?.architecture ?? (process.arch === 'x64' ? 'x86_64' : process.arch),
    creation_date: Math.floor(Date.now() / 1000),
    properties: {
      ...(pm?.properties ?? {}),
      os: pm?.properties.os ?? cfg.image.os ?? '',
      release: pm?.properties.release ?? cfg.image.release ?? '',
      description: description ?? `${pm?.properties.description ?? cfg.image.description ?? 'image'} (published from ${cfg.name})`,
      name: cfg.name,
    },
    ...(pm?.templates ? { templates: pm.templates } : {}),
    tslxc: {
      init: cfg.init,
      stop_signal: cfg.stop_signal,
      environment: cfg.environment,
      parent: cfg.image.fingerprint,
      source: 'publish',
      ...(layer ? { layer: true } : {}),
    },
  };
}

/** sha256 of a deterministic tar of the tree (sorted, numeric owners, no atime/ctime) and the metadata. */
async function treeDigest(root: string, meta: ImageMetadata): Promise<string> {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify(meta));
  const tar = requireTool('tar', 'publish an image');
  const child = spawn(
    tar,
    [
      '-c',
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '--sort=name',
      '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C',
      root,
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', (d) => h.update(d));
  const code = await new Promise<number>((resolve, reject) => child.on('error', reject).on('close', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new TslxcError('Cannot read the published tree', err.trim().split('\n').slice(-1)[0]);
  return h.digest('hex');
}
