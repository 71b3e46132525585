import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { requireTool, run } from '../util/exec.js';
import { validateAlias } from '../util/names.js';
import { imagesDir, type Paths } from '../state/paths.js';
import type { Context } from '../instance/context.js';
import { loadConfig, type InstanceConfig } from '../instance/config.js';
import { instanceState } from '../instance/status.js';
import { hostAccess } from '../storage/instance.js';
import { onDiskMap, VOLATILE_CURRENT } from '../instance/idmap.js';
import { shiftTree } from '../storage/shift.js';
import { addImage, getImage, type Image } from './store.js';
import type { ImageMetadata } from './metadata.js';
import type { Progress } from './build.js';

/**
 * `publish NAME`: a container's root becomes an image whose parent is the container's image. A
 * stopped container is read as its driver keeps it (an overlay's layers are merged by a read-only
 * overlay mount in a mount namespace of our own, so whiteouts count); a running one only with
 * `force`, frozen for the copy and read through its init's root. The fingerprint is the sha256 of
 * a deterministic tar of the tree plus the metadata, so it names the content.
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
    const cfg = await ctx.withInstanceLock(name, async () => {
      const cfg = loadConfig(ctx.paths, name);
      const state = await instanceState(ctx, cfg);
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(staging, { mode: 0o700 });
      const dst = path.join(staging, 'rootfs');
      opts.progress?.('copy', `copying the root of "${name}"`);
      if (state.status === 'Running' || state.status === 'Frozen') {
        if (!opts.force) throw new TslxcError(`Cannot publish "${name}"`, `it is ${state.status.toLowerCase()}`, 'stop it first, or use --force to freeze it for the copy');
        if (!state.initPid) throw new TslxcError(`Cannot publish "${name}"`, 'its init process is not known');
        const cg = await ctx.cgroups();
        const thaw = state.status === 'Running';
        if (thaw) await cg.freeze(name);
        try {
          if (cfg.config?.[VOLATILE_CURRENT] !== undefined) {
            // An unprivileged container's root seen through its init is idmapped (host ids
            // shifted into its range): copy the stored tree instead, whose ids are the image's.
            await copyStoppedRoot(ctx, name, staging, dst);
          } else {
            // Only the root filesystem: /proc, /sys, /dev, /run and other mounts inside stay empty.
            fs.mkdirSync(dst);
            await run('cp', ['-a', '-x', '--reflink=auto', `/proc/${state.initPid}/root/.`, dst], { what: `Cannot copy the root of "${name}"` });
          }
        } finally {
          if (thaw) await cg.thaw(name);
        }
      } else if (state.status === 'Stopped' || state.status === 'Created') {
        await copyStoppedRoot(ctx, name, staging, dst);
      } else {
        throw new TslxcError(`Cannot publish "${name}"`, `it is in state ${state.status}${state.reason ? ` (${state.reason})` : ''}`);
      }
      // Files shifted on disk (a filesystem without idmapped mounts): the image gets them unshifted.
      const onDisk = onDiskMap(cfg.config);
      if (onDisk) shiftTree(dst, onDisk, undefined);
      return cfg;
    });
    const meta = publishedMetadata(ctx.paths, cfg, opts.description);
    opts.progress?.('configure', 'computing the fingerprint');
    const fingerprint = await treeDigest(path.join(staging, 'rootfs'), meta);
    const parent = getImage(ctx.paths, cfg.image.fingerprint);
    const { image } = await addImage(
      ctx.paths,
      fingerprint,
      async (tmp) => {
        fs.renameSync(path.join(staging, 'rootfs'), path.join(tmp, 'rootfs'));
        if (parent && fs.existsSync(path.join(parent.dir, 'templates'))) await run('cp', ['-a', path.join(parent.dir, 'templates'), path.join(tmp, 'templates')], { what: 'Cannot copy the templates' });
        return meta;
      },
      aliases,
    );
    return image;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
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
  for (const d of [upper, ...lowers]) if (d.includes(':') || d.includes(',')) throw new TslxcError(`Cannot publish "${name}"`, `layer path ${d} has a ":" or ","`);
  const mnt = path.join(staging, 'merged');
  fs.mkdirSync(mnt);
  fs.mkdirSync(dst);
  // The upper as the top lower layer of a read-only overlay: its whiteouts and opaque dirs hide
  // what they hide inside the container. The mount lives and dies in a private mount namespace.
  const unshare = requireTool('unshare', 'publish an overlay container');
  await run(unshare, ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t overlay tslxc-publish -o "ro,lowerdir=$1" "$2" && cp -a "$2/." "$3"', 'sh', [upper, ...lowers].join(':'), mnt, dst], {
    what: `Cannot copy the root of "${name}"`,
  });
  fs.rmdirSync(mnt);
}

function publishedMetadata(p: Paths, cfg: InstanceConfig, description?: string): ImageMetadata {
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
    tslxc: { init: cfg.init, stop_signal: cfg.stop_signal, environment: cfg.environment, parent: cfg.image.fingerprint, source: 'publish' },
  };
}

/** sha256 of a deterministic tar of the tree (sorted, numeric owners, no atime/ctime) and the metadata. */
async function treeDigest(root: string, meta: ImageMetadata): Promise<string> {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify(meta));
  const tar = requireTool('tar', 'publish an image');
  const child = spawn(tar, ['-c', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', root, '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', (d) => h.update(d));
  const code = await new Promise<number>((resolve, reject) => child.on('error', reject).on('close', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new TslxcError('Cannot read the published tree', err.trim().split('\n').slice(-1)[0]);
  return h.digest('hex');
}
