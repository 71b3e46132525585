import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { validateAlias } from '../util/names.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { containerConfigFile, imagesDir, type Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';
import { listNames, type InstanceConfig } from '../state/config.js';
import {
  aliasDescriptions,
  descriptionsFile,
  getImage,
  imageSettings,
  listImages,
  readAliases,
  requireImage,
  withImagesLock,
  writeAliases,
  type Image,
  type ImageSettings,
} from './store.js';
import { stopKeeping } from './kept-export.js';
import type { ImageMetadata } from './metadata.js';
import { validateMetadata } from './lxd.js';
import { ensureUnpacked, isPacked } from './unpack.js';

/**
 * The store's graph: which images were made from which (metadata tslxc.parent), which containers
 * were made from which image (config image.fingerprint), and the operations that must respect it
 * (delete, alias changes, metadata edits).
 */
export const parentOf = (img: Image): string | undefined => img.metadata.tslxc?.parent;

/** Containers made from this image (by fingerprint), sorted by name. */
export function containersOf(p: Paths, fingerprint: string): string[] {
  return listNames(p)
    .filter((n) => readYamlIfExists<InstanceConfig>(containerConfigFile(p, n))?.image?.fingerprint === fingerprint)
    .sort();
}

export function childrenOf(p: Paths, fingerprint: string, all: Image[] = listImages(p)): Image[] {
  return all.filter((i) => parentOf(i) === fingerprint);
}

export interface Descendants {
  images: Image[];
  containers: Array<{ name: string; image: string }>;
}

/** Every image below a node (depth first) and every container made from the node or any of them. */
export function descendantsOf(p: Paths, fingerprint: string): Descendants {
  const all = listImages(p);
  const images: Image[] = [];
  const containers: Array<{ name: string; image: string }> = containersOf(p, fingerprint).map((name) => ({ name, image: fingerprint }));
  const walk = (fp: string, seen: Set<string>) => {
    for (const c of childrenOf(p, fp, all)) {
      if (seen.has(c.fingerprint)) continue; // a hand-edited cycle must not loop forever
      seen.add(c.fingerprint);
      images.push(c);
      for (const name of containersOf(p, c.fingerprint)) containers.push({ name, image: c.fingerprint });
      walk(c.fingerprint, seen);
    }
  };
  walk(fingerprint, new Set([fingerprint]));
  return { images, containers };
}

export interface TreeNode {
  fingerprint: string;
  aliases: string[];
  description: string;
  size?: number;
  /** the size is the node's own layer (what it adds to its parent) */
  layer?: boolean;
  containers: string[];
  children: TreeNode[];
  /** the parent it names is not in the store */
  orphan?: boolean;
}

/** The forest of images: roots are images with no parent (or a parent no longer stored). */
export function imageTree(p: Paths): TreeNode[] {
  const all = listImages(p);
  const known = new Set(all.map((i) => i.fingerprint));
  const node = (img: Image, seen: Set<string>): TreeNode => ({
    fingerprint: img.fingerprint,
    aliases: img.aliases,
    description: img.metadata.properties?.description ?? '',
    size: img.metadata.tslxc?.size,
    ...(img.metadata.tslxc?.layer ? { layer: true } : {}),
    containers: containersOf(p, img.fingerprint),
    children: childrenOf(p, img.fingerprint, all)
      .filter((c) => !seen.has(c.fingerprint))
      .sort((a, b) => a.metadata.creation_date - b.metadata.creation_date)
      .map((c) => node(c, new Set([...seen, c.fingerprint]))),
    ...(parentOf(img) && !known.has(parentOf(img)!) ? { orphan: true } : {}),
  });
  return all
    .filter((i) => !parentOf(i) || !known.has(parentOf(i)!))
    .sort((a, b) => a.metadata.creation_date - b.metadata.creation_date)
    .map((i) => node(i, new Set([i.fingerprint])));
}

export interface DeleteResult {
  deleted: string[];
  containers: string[];
}

/**
 * Deletes an image. With children or containers it is refused (naming them) unless `force`, which
 * removes the whole subtree and the containers made from it (deleteContainer does that, so the
 * container's own teardown runs) and reports what it removed. forgetInPools removes what the
 * storage pools keep of each deleted image (forgetImageInPools in storage/spares.ts): the caller
 * gives it, because storage builds on the image store and this module sits below storage.
 */
export async function deleteImage(
  p: Paths,
  ref: string,
  opts: { force?: boolean; deleteContainer?: (name: string) => Promise<void>; forgetInPools: (fingerprint: string) => Promise<void> },
): Promise<DeleteResult> {
  const img = requireImage(p, ref);
  const d = descendantsOf(p, img.fingerprint);
  if (!opts.force && (d.images.length || d.containers.length)) {
    const what: string[] = [];
    if (d.images.length) what.push(`image${d.images.length > 1 ? 's' : ''} ${d.images.map(label).join(', ')} derive${d.images.length > 1 ? '' : 's'} from it`);
    if (d.containers.length)
      what.push(`container${d.containers.length > 1 ? 's' : ''} ${d.containers.map((c) => c.name).join(', ')} use${d.containers.length > 1 ? '' : 's'} it`);
    throw new TslxcError(`Cannot delete image ${label(img)}`, what.join('; '), 'delete those first, or use --force to delete them too', { kind: 'conflict' });
  }
  if (d.containers.length && !opts.deleteContainer) throw new TslxcError(`Cannot delete image ${label(img)}`, 'containers use it');
  for (const c of d.containers) await opts.deleteContainer!(c.name);
  const order = [...d.images].reverse().concat(img);
  for (const i of order) await stopKeeping(p, i.fingerprint);
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    for (const i of order) {
      for (const [a, f] of Object.entries(table)) if (f === i.fingerprint) delete table[a];
    }
    writeAliases(p, table);
    for (const i of order) {
      // Renamed away first: a crash mid-removal leaves a hidden dir, never a half image.
      const trash = path.join(imagesDir(p), `.del-${i.fingerprint.slice(0, 12)}-${process.pid}`);
      fs.renameSync(i.dir, trash);
      fs.rmSync(trash, { recursive: true, force: true });
      bumpGeneration(p, scope.image(i.fingerprint));
    }
  });
  for (const i of order) await opts.forgetInPools(i.fingerprint);
  return { deleted: order.map((i) => i.fingerprint), containers: d.containers.map((c) => c.name) };
}

/** Images stored before sizes were recorded: measured when asked. */
function duSync(dir: string): number | undefined {
  const r = spawnSync('du', ['-s', '-B1', '-x', dir], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split(/\s/)[0]) : undefined;
}

export const label = (i: Image): string => (i.aliases.length ? `${i.aliases[0]} (${i.fingerprint.slice(0, 12)})` : i.fingerprint.slice(0, 12));

function setDescription(p: Paths, alias: string, description: string | undefined, from?: string): void {
  const d = aliasDescriptions(p);
  const had = JSON.stringify(d);
  if (from !== undefined) {
    description ??= d[from];
    delete d[from];
  }
  if (description) d[alias] = description;
  else delete d[alias];
  if (JSON.stringify(d) !== had) writeYamlAtomic(descriptionsFile(p), d);
}

const aliasMissing = (alias: string) => new TslxcError(`Alias "${alias}" not found`, undefined, 'see "tslxc image alias list"', { kind: 'not-found' });

export async function createAlias(p: Paths, alias: string, ref: string, description?: string): Promise<void> {
  validateAlias(alias);
  const img = requireImage(p, ref);
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    if (table[alias]) throw new TslxcError(`Alias "${alias}" already exists`, `it names ${table[alias].slice(0, 12)}`, 'delete it first', { kind: 'conflict' });
    table[alias] = img.fingerprint;
    writeAliases(p, table);
    setDescription(p, alias, description);
  });
}

/**
 * Points an alias at another image and/or changes its description (LXD's alias PUT and PATCH).
 * `check` sees the alias as it is under the lock (the API's If-Match), and may refuse.
 */
export async function updateAlias(
  p: Paths,
  alias: string,
  change: { target?: string; description?: string },
  check: (current: { target: string; description: string }) => void = () => {},
): Promise<void> {
  const img = change.target !== undefined ? requireImage(p, change.target) : undefined;
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    if (!table[alias]) throw aliasMissing(alias);
    check({ target: table[alias], description: aliasDescriptions(p)[alias] ?? '' });
    if (img && table[alias] !== img.fingerprint) {
      table[alias] = img.fingerprint;
      writeAliases(p, table);
    }
    if (change.description !== undefined) setDescription(p, alias, change.description);
  });
}

export async function deleteAlias(p: Paths, alias: string): Promise<void> {
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    if (!table[alias]) throw aliasMissing(alias);
    delete table[alias];
    writeAliases(p, table);
    setDescription(p, alias, undefined);
  });
}

export async function renameAlias(p: Paths, from: string, to: string): Promise<void> {
  validateAlias(to);
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    if (!table[from]) throw aliasMissing(from);
    if (table[to]) throw new TslxcError(`Alias "${to}" already exists`, `it names ${table[to].slice(0, 12)}`, undefined, { kind: 'conflict' });
    table[to] = table[from];
    delete table[from];
    writeAliases(p, table);
    setDescription(p, to, undefined, from);
  });
}

/**
 * Changes an image's properties and settings (LXD's image PUT/PATCH) under the images lock. The
 * stored files stay as they are, so an imported image still exports byte for byte (as LXD's
 * export gives back the file, whatever its properties in the database say).
 */
export async function updateImage(
  p: Paths,
  fingerprint: string,
  change: (current: { properties: Record<string, string>; settings: ImageSettings }) => { properties: Record<string, string>; settings: ImageSettings },
): Promise<void> {
  await withImagesLock(p, async () => {
    const img = requireImage(p, fingerprint);
    const meta = img.metadata;
    const props: Record<string, string> = {};
    for (const [k, v] of Object.entries(meta.properties ?? {})) if (v !== undefined) props[k] = String(v);
    const next = change({ properties: props, settings: imageSettings(img) });
    meta.properties = {
      ...next.properties,
      os: next.properties.os ?? '',
      release: next.properties.release ?? '',
      description: next.properties.description ?? '',
    };
    meta.tslxc = { ...(meta.tslxc ?? {}), lxd: next.settings };
    writeYamlAtomic(path.join(img.dir, 'metadata.yaml'), meta);
    bumpGeneration(p, scope.image(img.fingerprint));
  });
}

export function listAliases(p: Paths): Array<{ alias: string; fingerprint: string; description: string }> {
  return Object.entries(readAliases(p))
    .map(([alias, fingerprint]) => ({ alias, fingerprint, description: getImage(p, fingerprint)?.metadata.properties?.description ?? '(missing image)' }))
    .sort((a, b) => a.alias.localeCompare(b.alias));
}

/** What `image info` shows. */
export function imageInfo(p: Paths, ref: string) {
  const img = requireImage(p, ref);
  const m = img.metadata;
  const t = m.tslxc ?? {};
  const parent = t.parent ? getImage(p, t.parent) : undefined;
  return {
    fingerprint: img.fingerprint,
    aliases: img.aliases,
    size: t.size ?? duSync(img.dir),
    created_at: new Date(m.creation_date * 1000).toISOString(),
    architecture: m.architecture,
    os: m.properties?.os,
    release: m.properties?.release,
    variant: m.properties?.variant,
    description: m.properties?.description,
    parent: t.parent ? { fingerprint: t.parent, aliases: parent?.aliases ?? [], ...(parent ? {} : { missing: true }) } : null,
    /** layer: the size is what it adds to its parent; whole: a complete tree */
    stored: t.layer ? 'layer' : 'whole',
    /** false: an imported image kept as its archive until a container first needs its tree */
    unpacked: !isPacked(img),
    init: t.init ?? ['/sbin/init'],
    stop_signal: t.stop_signal ?? 'SIGPWR',
    environment: t.environment ?? {},
    templates: Object.keys(m.templates ?? {}),
    source: t.source ?? 'build',
    children: childrenOf(p, img.fingerprint).map((c) => c.fingerprint),
    containers: containersOf(p, img.fingerprint),
  };
}

/**
 * `image edit`: a new metadata.yaml, checked like an imported one. Fields tslxc derives (size,
 * parent, original files) are kept from the old one: they describe the stored data, not the image.
 */
export async function editMetadata(p: Paths, ref: string, doc: unknown): Promise<void> {
  const meta = validateMetadata(doc, 'the edited metadata');
  // An edit drops the original files (below): a tree still in them is unpacked first.
  const img = await ensureUnpacked(p, requireImage(p, ref));
  const keep = img.metadata.tslxc ?? {};
  meta.tslxc = {
    ...(meta.tslxc ?? {}),
    size: keep.size,
    parent: keep.parent,
    layer: keep.layer,
    original: keep.original,
    recipe_key: keep.recipe_key,
    source: keep.source,
    lxd: keep.lxd,
  };
  for (const k of Object.keys(meta.tslxc) as Array<keyof NonNullable<ImageMetadata['tslxc']>>) if (meta.tslxc[k] === undefined) delete meta.tslxc[k];
  // Exporting the original files would no longer give this metadata back.
  if (keep.original) delete meta.tslxc.original;
  await withImagesLock(p, async () => {
    writeYamlAtomic(path.join(img.dir, 'metadata.yaml'), meta);
    bumpGeneration(p, scope.image(img.fingerprint));
  });
}
