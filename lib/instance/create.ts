import crypto from 'node:crypto';
import fs from 'node:fs';
import { TslxcError, errorText } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { Reverter } from '../util/revert.js';
import { validateInstanceName } from '../util/names.js';
import { containerDir, containersDir } from '../state/paths.js';
import { resolveImage } from '../image/resolve.js';
import { renderTemplates } from '../image/templates.js';
import { isPacked } from '../image/unpack.js';
import type { Image } from '../image/store.js';
import { createEmptyRootfs, createRootfs, deleteRootfs, hostAccess, rootPoolOf, writeRootFiles, type RootFile } from '../storage/instance.js';
import type { Progress } from '../image/progress.js';
import { configExists, saveConfig, type InstanceConfig } from '../state/config.js';
import { sweepInstanceLocks, type Context } from '../state/context.js';
import { profileExists } from '../profile/store.js';
import { expandInstance } from '../profile/expand.js';
import { validateChange, validateExpanded } from '../config/schema.js';
import { hostFacts } from '../host/facts.js';
import { authorizeTslxcKey } from '../ssh/authorized.js';
import { hostKeyFiles, imageNeedsHostKeys } from '../ssh/hostkeys.js';
import { crashPoint } from '../util/crash.js';

export interface CreateOptions {
  hostname?: string;
  release?: string;
  mirror?: string;
  environment?: Record<string, string>;
  init?: string[];
  profiles?: string[];
  /** config keys (-c KEY=VALUE), validated against the schema and the host before anything is made */
  config?: Record<string, string>;
  /** storage pool of the root (default: the profiles' root disk, else "default") */
  storage?: string;
  progress?: Progress;
  /** free text shown beside it (LXD's description) */
  description?: string;
  /** deleted when it stops (LXD's ephemeral) */
  ephemeral?: boolean;
}

/**
 * Create a container from an image: its own copy of the image's root, a config, and the files that
 * carry its identity (hostname, hosts, machine-id). A failure at any step removes what was made.
 */
export async function createInstance(ctx: Context, imageRef: string, name: string, opts: CreateOptions = {}): Promise<InstanceConfig> {
  const { hostname, poolName } = checkNew(ctx, name, opts);
  // Resolving may build the image (minutes, the first time): do it before taking the container's lock.
  const image = await resolveImage(ctx.paths, imageRef, { release: opts.release, mirror: opts.mirror }, opts.progress);

  return ctx.withInstanceLock(name, () =>
    Reverter.run(async (revert) => {
      crashPoint('create:locked');
      if (fs.existsSync(containerDir(ctx.paths, name)))
        throw new TslxcError(`Container "${name}" already exists`, undefined, 'pick another name or delete it first', { kind: 'conflict' });
      mkdirp(containersDir(ctx.paths), 0o711);
      fs.mkdirSync(containerDir(ctx.paths, name), { mode: 0o700 });
      revert.add(() => fs.rmSync(containerDir(ctx.paths, name), { recursive: true, force: true }));
      crashPoint('create:dir-made');
      const meta = image.metadata;
      const cfg: InstanceConfig = {
        name,
        status: 'creating',
        created_at: new Date().toISOString(),
        hostname,
        image: {
          fingerprint: image.fingerprint,
          alias: image.aliases[0] ?? imageRef,
          os: meta.properties.os,
          release: meta.properties.release,
          description: meta.properties.description,
        },
        init: opts.init ?? meta.tslxc?.init ?? ['/sbin/init'],
        stop_signal: meta.tslxc?.stop_signal ?? 'SIGPWR',
        environment: { ...(meta.tslxc?.environment ?? {}), ...(opts.environment ?? {}) },
        profiles: opts.profiles ?? ['default'],
        config: { ...(opts.config ?? {}) },
        devices: {},
        ...userFields(opts),
      };
      saveConfig(ctx.paths, cfg);
      opts.progress?.('copy', `making the root filesystem from ${cfg.image.alias}`);
      revert.add(() => deleteRootfs(ctx, name));
      await createRootfs(ctx, image, name, poolName);
      crashPoint('create:root-made');
      const tree = imageTree(ctx, name, image);
      // Its own SSH host keys now, not at first boot (see ssh/hostkeys.ts: an RSA key slows the boot).
      // Asked before anything is written into the root, which may be where the image's files are read.
      const needsHostKeys = imageNeedsHostKeys(ctx.paths, tree);
      // The image's own templates (LXD images carry some) first, so tslxc's identity files win.
      const rendered = renderTemplates(image, 'create', { name, hostname });
      if (rendered.files.length) writeRootFiles(ctx, name, rendered.files);
      for (const s of rendered.skipped) opts.progress?.('configure', `template not rendered: ${s}`);
      const hostKeys = needsHostKeys ? hostKeyFiles(hostname) : [];
      const identity = [...identityFiles(hostname, { newMachineId: true }), ...hostKeys];
      writeRootFiles(ctx, name, identity);
      // Images that run sshd let tslxc in with its own key (tslxc ssh). A convenience: an image
      // whose /root cannot take it still makes a container, and the line says why ssh will not work.
      try {
        if (
          await authorizeTslxcKey(
            ctx,
            name,
            tree,
            [...rendered.files, ...identity].map((f) => f.path),
          )
        )
          opts.progress?.('configure', "tslxc's SSH key authorized for root");
      } catch (err) {
        opts.progress?.('configure', `tslxc's SSH key NOT authorized for root (tslxc ssh will be refused): ${errorText(err)}`);
      }
      crashPoint('create:configured');
      cfg.status = 'created';
      saveConfig(ctx.paths, cfg);
      return cfg;
    }),
  );
}

/**
 * Where a create reads the image's files (does it run sshd, root's passwd entry): the store's tree,
 * or, for an imported image still packed there (its archive was unpacked straight into the
 * container: a dir pool), the container's new root, which is the image's tree until written to.
 */
function imageTree(ctx: Context, name: string, image: Image): Image {
  if (!isPacked(image)) return image;
  const acc = hostAccess(ctx, name);
  return acc.helperArgs ? image : { ...image, rootfs: acc.root };
}

/** What every new container is checked for before anything is made: its name, hostname, profiles and config. */
function checkNew(ctx: Context, name: string, opts: CreateOptions): { hostname: string; poolName: string } {
  validateInstanceName(name);
  const hostname = opts.hostname ?? name;
  validateHostname(hostname);
  for (const prof of opts.profiles ?? ['default'])
    if (!profileExists(ctx.paths, prof)) throw new TslxcError(`Profile "${prof}" not found`, undefined, 'see "tslxc profile list"');
  if (opts.config && Object.keys(opts.config).length > 0) {
    const host = hostFacts();
    validateChange(opts.config, host);
    validateExpanded(expandInstance(ctx.paths, { profiles: opts.profiles ?? ['default'], config: opts.config, devices: {} }).config, host, name);
  }
  const poolName = opts.storage ?? rootPoolOf(ctx, opts.profiles ?? ['default']);
  if (configExists(ctx.paths, name))
    throw new TslxcError(`Container "${name}" already exists`, undefined, 'pick another name or delete it first', { kind: 'conflict' });
  sweepInstanceLocks(ctx.paths);
  return { hostname, poolName };
}

/** The description and the ephemeral flag, kept only when set (older configs have neither). */
function userFields(opts: CreateOptions): Pick<InstanceConfig, 'description' | 'ephemeral'> {
  return { ...(opts.description ? { description: opts.description } : {}), ...(opts.ephemeral ? { ephemeral: true } : {}) };
}

/**
 * A container with an empty root and no image (LXD's source type "none"): its files come later
 * (file push, or a copy into it); it starts once they hold its init.
 */
export async function createEmptyInstance(ctx: Context, name: string, opts: CreateOptions = {}): Promise<InstanceConfig> {
  const { hostname, poolName } = checkNew(ctx, name, opts);
  return ctx.withInstanceLock(name, () =>
    Reverter.run(async (revert) => {
      if (fs.existsSync(containerDir(ctx.paths, name)))
        throw new TslxcError(`Container "${name}" already exists`, undefined, 'pick another name or delete it first', { kind: 'conflict' });
      mkdirp(containersDir(ctx.paths), 0o711);
      const instDir = containerDir(ctx.paths, name);
      fs.mkdirSync(instDir, { mode: 0o700 });
      revert.add(() => fs.rmSync(instDir, { recursive: true, force: true }));
      const cfg: InstanceConfig = {
        name,
        status: 'creating',
        created_at: new Date().toISOString(),
        hostname,
        image: { fingerprint: '' },
        init: opts.init ?? ['/sbin/init'],
        stop_signal: 'SIGPWR',
        environment: { ...(opts.environment ?? {}) },
        profiles: opts.profiles ?? ['default'],
        config: { ...(opts.config ?? {}) },
        devices: {},
        ...userFields(opts),
      };
      saveConfig(ctx.paths, cfg);
      revert.add(() => deleteRootfs(ctx, name));
      await createEmptyRootfs(ctx, name, poolName);
      cfg.status = 'created';
      saveConfig(ctx.paths, cfg);
      return cfg;
    }),
  );
}

export function validateHostname(h: string): void {
  if (h.length > 253 || !h.split('.').every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l))) {
    throw new TslxcError(`Invalid hostname "${h.slice(0, 70)}"`, 'use DNS labels (letters, digits, "-") separated by dots');
  }
}

/** The files that carry a container's identity; rewritten at create, rename and copy. */
export function writeIdentity(ctx: Context, name: string, hostname: string, opts: { newMachineId?: boolean; instDir?: string } = {}): void {
  writeRootFiles(ctx, name, identityFiles(hostname, opts), opts.instDir);
}

export function identityFiles(hostname: string, opts: { newMachineId?: boolean } = {}): RootFile[] {
  const short = hostname.split('.')[0];
  const files: RootFile[] = [{ path: '/etc/hostname', content: `${hostname}\n` }];
  files.push({
    path: '/etc/hosts',
    content: `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}${short !== hostname ? ` ${short}` : ''}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`,
  });
  if (opts.newMachineId) files.push({ path: '/etc/machine-id', content: `${crypto.randomBytes(16).toString('hex')}\n`, mode: 0o444 });
  return files;
}
