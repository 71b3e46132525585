import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { run } from '../util/exec.js';
import { withLock } from '../util/lock.js';
import { validateAlias } from '../util/names.js';
import { pidAlive } from '../util/proc.js';
import { imagesDir, locksDir, type Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';
import { keepExportLater } from './kept-export.js';
import type { ImageMetadata } from './metadata.js';

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

/** What LXD keeps of an image besides its files (api.ImagePut); tslxc acts on none of it. */
export interface ImageSettings {
  public: boolean;
  auto_update: boolean;
  /** RFC 3339; LXD's zero time for never */
  expires_at: string;
  profiles: string[];
}

export const DEFAULT_SETTINGS: ImageSettings = { public: false, auto_update: false, expires_at: '0001-01-01T00:00:00Z', profiles: ['default'] };

export const imageSettings = (img: Image): ImageSettings => ({ ...DEFAULT_SETTINGS, ...(img.metadata.tslxc?.lxd ?? {}) });

const aliasesFile = (p: Paths) => path.join(imagesDir(p), 'aliases.yaml');

export function readAliases(p: Paths): Record<string, string> {
  return readYamlIfExists<Record<string, string>>(aliasesFile(p)) ?? {};
}

/** Aliases' descriptions (LXD keeps one per alias), beside the alias table: alias → text. */
export const descriptionsFile = (p: Paths) => path.join(imagesDir(p), 'alias-descriptions.yaml');

export function aliasDescriptions(p: Paths): Record<string, string> {
  return readYamlIfExists<Record<string, string>>(descriptionsFile(p)) ?? {};
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
  if (!img) throw new TslxcError(`Image "${ref}" not found`, undefined, 'see "tslxc image list"', { kind: 'not-found' });
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
  /** what the dir takes, where the caller knows it without a walk (an import's one or two files) */
  sizeOf: (tmp: string) => Promise<number> = treeSize,
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
        metadata.tslxc = { ...(metadata.tslxc ?? {}), size: await sizeOf(tmp) };
        writeYamlAtomic(path.join(tmp, 'metadata.yaml'), metadata);
        fs.renameSync(tmp, dir);
        bumpGeneration(p, scope.image(fingerprint));
        // A built image's export (what the API shows and sends), made ahead of the first ask.
        if (!metadata.tslxc.original) keepExportLater(p, [fingerprint]);
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
  const aliases = Object.entries(readAliases(p))
    .filter(([, f]) => f === fingerprint)
    .map(([a]) => a);
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

/**
 * An alias, a full fingerprint, or a unique fingerprint prefix; failing those, the sha256 (or a
 * unique prefix of it) of a built image's kept export, the fingerprint the API shows for it.
 */
export function findImage(p: Paths, ref: string): Image | undefined {
  const byAlias = readAliases(p)[ref];
  if (byAlias) return getImage(p, byAlias);
  if (/^[0-9a-f]{1,64}$/.test(ref)) {
    const all = listImages(p);
    let matches = all.filter((i) => i.fingerprint.startsWith(ref));
    if (!matches.length) matches = all.filter((i) => keptExport(i)?.sha256.startsWith(ref));
    if (matches.length > 1) throw new TslxcError(`Image "${ref}" is ambiguous`, `${matches.length} fingerprints start with it`, 'give more digits');
    return matches[0];
  }
  return undefined;
}

const KEPT_EXPORT = /^export-([0-9a-f]{64})\.tar\.gz$/;

/** The name a built image's export is kept under in its dir (lib/image/lxd.ts keepExport makes it). */
export const keptExportName = (sha256: string) => `export-${sha256}.tar.gz`;

/**
 * A built image's export as LXD's unified tarball, once made (lib/image/lxd.ts keepExport), and
 * its sha256: what LXD's clients check a download against. Imported images have their original
 * file instead (metadata.tslxc.original).
 */
export function keptExport(img: Image): { file: string; sha256: string } | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(img.dir);
  } catch {
    return undefined;
  }
  for (const n of names) {
    const m = KEPT_EXPORT.exec(n);
    if (m) return { file: path.join(img.dir, n), sha256: m[1] };
  }
  return undefined;
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
