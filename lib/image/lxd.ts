import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { TslxcError, errorText } from '../errors.js';
import { findTool, requireTool, run, tarFileChangedOnly } from '../util/exec.js';
import type { Paths } from '../state/paths.js';
import { addImage, getImage, keptExport, keptExportName, readAliases, requireImage, withImagesLock, writeAliases, type Image } from './store.js';
import { imagesDir } from '../state/paths.js';
import type { ImageMetadata } from './metadata.js';
import { checkEntries, UNIFIED_CHECKS, extractTar, listSquashfs, listStored, listTar, sha256Of, storeCopy, type Entry } from './archive.js';
import { cleanLayer, isLayer, layerDirs, runOnOverlay } from './layers.js';
import { ensureUnpacked } from './unpack.js';
import { beginImport, type BegunImport } from './begin.js';
import { copyHeadFiles, writeCapturedFiles } from './headfiles.js';

/**
 * LXD's image formats, both ways. A unified tarball holds metadata.yaml, rootfs/ and templates/;
 * a split image is a metadata tarball (metadata.yaml, templates/) plus a rootfs tarball or
 * squashfs. The fingerprint is what LXD computes: the sha256 of the tarball, or of the metadata
 * tarball followed by the rootfs file. Imported files are kept beside the image, so exporting it
 * gives the same bytes back and the fingerprint survives any number of round trips.
 */
export type Compression = 'gzip' | 'xz' | 'zstd';

/** The sha256 of the files one after the other: LXD's fingerprint of an image's files. */
export function sha256Files(files: string[]): Promise<string> {
  return sha256Of(files);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks an LXD metadata.yaml (plus tslxc's own keys) and returns it in the store's shape. */
export function validateMetadata(doc: unknown, what: string): ImageMetadata {
  const bad = (why: string) => new TslxcError(`Invalid metadata.yaml in ${what}`, why);
  if (!isObject(doc)) throw bad('it must be a YAML mapping');
  if (typeof doc.architecture !== 'string' || !/^[a-z0-9_.-]+$/i.test(doc.architecture)) throw bad('"architecture" must be a name like x86_64');
  const cd = doc.creation_date === undefined ? Math.floor(Date.now() / 1000) : Number(doc.creation_date);
  if (!Number.isFinite(cd) || cd < 0) throw bad('"creation_date" must be a Unix time');
  const props: Record<string, string> = {};
  if (doc.properties !== undefined) {
    if (!isObject(doc.properties)) throw bad('"properties" must be a mapping');
    for (const [k, v] of Object.entries(doc.properties)) {
      if (v === null || isObject(v) || Array.isArray(v)) throw bad(`properties.${k} must be a string`);
      props[k] = String(v);
    }
  }
  const meta: ImageMetadata = {
    ...(doc as object),
    architecture: doc.architecture,
    creation_date: Math.floor(cd),
    properties: { ...props, os: props.os ?? '', release: props.release ?? '', description: props.description ?? '' },
  } as ImageMetadata;
  if (doc.templates !== undefined) {
    if (!isObject(doc.templates)) throw bad('"templates" must be a mapping');
    for (const [p, t] of Object.entries(doc.templates)) {
      if (!p.startsWith('/') || p.split('/').includes('..')) throw bad(`template target "${p.slice(0, 60)}" must be an absolute path without ".."`);
      if (!isObject(t) || typeof t.template !== 'string' || t.template.includes('/') || t.template.startsWith('.'))
        throw bad(`templates["${p.slice(0, 60)}"].template must be a file name in templates/`);
    }
  }
  if (doc.tslxc !== undefined) {
    const x = doc.tslxc;
    if (!isObject(x)) throw bad('"tslxc" must be a mapping');
    if (x.init !== undefined && !(Array.isArray(x.init) && x.init.every((a) => typeof a === 'string') && x.init.length > 0))
      throw bad('tslxc.init must be a list of strings');
    if (x.stop_signal !== undefined && !(typeof x.stop_signal === 'string' && /^SIG[A-Z0-9+]+$/.test(x.stop_signal)))
      throw bad('tslxc.stop_signal must be a signal name like SIGPWR');
    if (x.environment !== undefined && !(isObject(x.environment) && Object.values(x.environment).every((v) => typeof v === 'string')))
      throw bad('tslxc.environment must map names to strings');
    if (x.parent !== undefined && !(typeof x.parent === 'string' && /^[0-9a-f]{64}$/.test(x.parent))) throw bad('tslxc.parent must be a sha256 fingerprint');
  }
  return meta;
}

function readMetadataFile(file: string, what: string): ImageMetadata {
  if (!fs.existsSync(file) || !fs.lstatSync(file).isFile()) throw new TslxcError(`Invalid image ${what}`, 'it has no metadata.yaml');
  let doc: unknown;
  try {
    doc = yaml.load(fs.readFileSync(file, 'utf8'), { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new TslxcError(`Invalid metadata.yaml in ${what}`, errorText(err).split(' (')[0].slice(0, 120));
  }
  return validateMetadata(doc, what);
}

function checkTemplates(meta: ImageMetadata, dir: string, what: string): void {
  for (const [p, t] of Object.entries(meta.templates ?? {})) {
    if (!fs.existsSync(path.join(dir, 'templates', t.template)))
      throw new TslxcError(`Invalid image ${what}`, `template "${t.template}" for ${p} is not in templates/`);
  }
}

export interface ImportResult {
  image: Image;
  existed: boolean;
}

/**
 * `image import FILE [ROOTFS] --alias A`: a unified tarball, or a split metadata + rootfs pair.
 * Each file is stored first (the kernel's copy), and that stored copy is what is listed for the
 * safety checks and what the fingerprint is the sha256 of (archive.ts). A unified tarball's pass is started by
 * begin.ts, which the CLI calls before loading this module; a split pair's files are hashed as
 * one. metadata.yaml and templates/ are taken from the stored copy at once,
 * the rootfs only when something first needs the tree (unpack.ts), as LXD does. A registry pull
 * (`opts`) is unpacked now: its layer is cleaned against its parent, and its file is not kept.
 */
export async function importImage(
  p: Paths,
  file: string,
  rootfsFile: string | undefined,
  aliases: string[] = [],
  /** a registry pull: the node's own fingerprint (its blob's sha256 was checked by the caller); the original file is not kept */
  opts: { fingerprint?: string } = {},
  /** what the CLI began already (begin.ts), with these same files and aliases */
  begun?: BegunImport,
): Promise<ImportResult> {
  if (opts.fingerprint) {
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new TslxcError(`Cannot import ${file}`, 'no such file');
    return importRegistryNode(p, file, opts.fingerprint, aliases);
  }
  const { stage, orig, kept, stored, pass } = begun ?? beginImport(p, file, rootfsFile, aliases);
  const what = path.basename(file);
  try {
    const x = path.join(stage, 'x');
    fs.mkdirSync(x, { mode: 0o700 });
    let fingerprint: string;
    if (pass) {
      const { entries, sha256, names: checked, captured } = await pass.result();
      const names = checked ?? checkEntries(entries, what, UNIFIED_CHECKS);
      if (!names.includes('metadata.yaml'))
        throw new TslxcError(`Invalid image ${what}`, 'it has no metadata.yaml (a split image needs its rootfs file as a second argument)');
      if (!names.some((n) => n === 'rootfs' || n.startsWith('rootfs/')))
        throw new TslxcError(`Invalid image ${what}`, 'it has no rootfs/ (for a split image give the rootfs file as a second argument)');
      const wanted = headEntries(entries, names);
      if (!(captured && writeCapturedFiles(x, entries, names, wanted, captured)) && !(await copyHeadFiles(stored[0]!, x, entries, names, wanted)))
        await extractTar(stored[0]!, x, what, headMembers(entries, wanted));
      fingerprint = sha256;
    } else {
      // A split image: both files stored, then hashed as one (LXD's fingerprint) and listed, at once.
      const rwhat = path.basename(rootfsFile!);
      await Promise.all([storeCopy(file, stored[0]!, what), storeCopy(rootfsFile!, stored[1]!, rwhat)]);
      const [sum, entries, rootEntries] = await Promise.all([sha256Of(stored), listStored(stored[0]!, what), listStored(stored[1]!, rwhat)]);
      if (!entries)
        throw new TslxcError(`Cannot read ${what}`, 'it is a squashfs image, not a tar archive — the file is corrupt, truncated or not a tar archive');
      const names = checkEntries(entries, what, { roots: ['metadata.yaml', 'templates'], rootfsPrefix: null });
      if (!names.includes('metadata.yaml')) throw new TslxcError(`Invalid image ${what}`, 'the metadata tarball has no metadata.yaml');
      // A squashfs is not a stream: it is listed by unsquashfs, from the stored copy too.
      checkEntries(rootEntries ?? listSquashfs(stored[1]!, rwhat), rwhat, { rootfsPrefix: '' });
      await extractTar(stored[0]!, x, what);
      fingerprint = sum;
    }
    const meta = readMetadataFile(path.join(x, 'metadata.yaml'), what);
    checkTemplates(meta, x, what);
    // Anything imported is whole, whatever its metadata claims.
    if (meta.tslxc) delete meta.tslxc.layer;
    meta.tslxc = { ...(meta.tslxc ?? {}), source: 'import', original: { kind: rootfsFile ? 'split' : 'unified', files: kept } };
    return await addImage(
      p,
      fingerprint,
      async (tmp) => {
        fs.renameSync(orig, path.join(tmp, 'original'));
        if (fs.existsSync(path.join(x, 'templates'))) fs.renameSync(path.join(x, 'templates'), path.join(tmp, 'templates'));
        return meta;
      },
      aliases,
      // The stored files and the few templates: stat them rather than spawn du.
      async (tmp) => filesSize(tmp),
    );
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Blocks in use under a small dir, as `du -s -B1` counts them. */
function filesSize(dir: string): number {
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) return st.blocks * 512;
  return fs.readdirSync(dir).reduce((sum, name) => sum + filesSize(path.join(dir, name)), st.blocks * 512);
}

/**
 * What a unified tarball's metadata needs from it: metadata.yaml and the files under templates/,
 * taken from the head of the archive (copyHeadFiles), or by tar, which stops reading once it has
 * them (at once when they come before rootfs/, as tslxc's exports put them).
 */
function headEntries(entries: Entry[], names: string[]): number[] {
  const wanted: number[] = [];
  entries.forEach((e, i) => {
    const n = names[i]!;
    if (n === 'metadata.yaml' || (n.startsWith('templates/') && (e.type === '-' || e.type === 'h'))) wanted.push(i);
  });
  return wanted;
}

/** Their names as listed (with the targets of their hard links), for tar -x. */
function headMembers(entries: Entry[], wanted: number[]): string[] {
  const want = new Set<string>();
  for (const i of wanted) {
    const e = entries[i]!;
    want.add(e.name);
    if (e.type === 'h' && e.link) want.add(e.link);
  }
  return [...want];
}

/** A registry node: its layer is cleaned against its parent, so it is unpacked into the store now. */
async function importRegistryNode(p: Paths, file: string, fingerprint: string, aliases: string[]): Promise<ImportResult> {
  const what = path.basename(file);
  return addImage(
    p,
    fingerprint,
    async (tmp) => {
      const x = path.join(tmp, 'x');
      fs.mkdirSync(x, { mode: 0o700 });
      const names = checkEntries(listTar(file, what), what, { roots: ['metadata.yaml', 'rootfs', 'templates'], rootfsPrefix: 'rootfs', whiteouts: true });
      if (!names.includes('metadata.yaml')) throw new TslxcError(`Invalid image ${what}`, 'it has no metadata.yaml');
      if (!names.some((n) => n === 'rootfs' || n.startsWith('rootfs/'))) throw new TslxcError(`Invalid image ${what}`, 'it has no rootfs/');
      await extractTar(file, x, what);
      const meta = readMetadataFile(path.join(x, 'metadata.yaml'), what);
      checkTemplates(meta, x, what);
      fs.renameSync(path.join(x, 'rootfs'), path.join(tmp, 'rootfs'));
      if (fs.existsSync(path.join(x, 'templates'))) fs.renameSync(path.join(x, 'templates'), path.join(tmp, 'templates'));
      fs.rmSync(x, { recursive: true, force: true });
      if (meta.tslxc?.layer === true) {
        // Usable only over its parent, which a pull brings first.
        const parent = meta.tslxc.parent;
        if (!parent || !getImage(p, parent))
          throw new TslxcError(
            `Cannot import ${what}`,
            `it is a layer over ${parent ? parent.slice(0, 12) : 'no parent'}, which is not in the image store`,
            'pull the image with its parent',
          );
        await cleanLayer(path.join(tmp, 'rootfs'));
      }
      meta.tslxc = { ...(meta.tslxc ?? {}), source: 'registry' };
      return meta;
    },
    aliases,
  );
}

const EXT: Record<Compression, string> = { gzip: '.tar.gz', xz: '.tar.xz', zstd: '.tar.zst' };
/**
 * The compressor for tar -I. For gzip, isa-l's igzip at its top level (3) where the host has it:
 * gzip's default level spends seconds of CPU on a Debian tree, too many for pigz to hide on a host
 * with few cores, and igzip needs a small part of that for a slightly bigger file. Then pigz (every
 * core), then gzip. zstd uses its own threads. Each gives the same bytes for any number of threads,
 * so an export stays deterministic on a host; xz keeps one thread (its threaded output differs).
 */
function compressor(comp: Compression): string {
  if (comp === 'gzip') return findTool('igzip') ? 'igzip -n -3' : findTool('pigz') ? 'pigz -n' : 'gzip -n';
  return comp === 'zstd' ? 'zstd -q -T0' : 'xz -T1';
}

export interface ExportOptions {
  split?: boolean;
  /** split only: the rootfs as squashfs instead of a tarball */
  squashfs?: boolean;
  compression?: Compression;
  /**
   * A registry node: a layered image's own layer as stored (whiteouts, opaque dirs), with its
   * layer flag kept. Otherwise a layered image is exported whole (LXD has no layers).
   */
  layer?: boolean;
}

/**
 * `image export IMAGE [TARGET]`: TARGET is a dir (files named by fingerprint inside) or a file
 * name. An imported image whose original files are kept, asked for without a different format,
 * is exported as those files; any other is packed anew (sorted, numeric owners, xattrs, no
 * atime/ctime, so the same image gives the same bytes).
 */
export async function exportImage(p: Paths, ref: string, target: string, opts: ExportOptions = {}): Promise<{ files: string[]; fingerprint: string }> {
  let img = requireImage(p, ref);
  // A layered image's tree is its layers merged: mounted read-only (in a mount namespace of the
  // packing command's own) at stage/view/rootfs, and packed from there.
  const flatten = isLayer(img) && !opts.layer;
  const orig = img.metadata.tslxc?.original;
  const asked = opts.compression !== undefined || opts.squashfs !== undefined || opts.split !== undefined;
  const sameFormat = orig && (!asked || ((orig.kind === 'split') === !!opts.split && opts.compression === undefined && opts.squashfs === undefined));
  const isDir = fs.existsSync(target) && fs.statSync(target).isDirectory();
  const fp = img.fingerprint;
  if (orig && sameFormat) {
    const out = orig.files.map((f, i) => {
      const e = f.replace(/^(meta|rootfs)/, '');
      if (isDir) return path.join(target, i === 0 && orig.kind === 'split' ? `meta-${fp}${e}` : `${fp}${e}`);
      return i === 0 ? target : `${stripExt(target)}.root${e}`;
    });
    for (let i = 0; i < out.length; i++)
      await run('cp', ['--reflink=auto', path.join(img.dir, 'original', orig.files[i]), out[i]], { what: `Cannot write ${out[i]}` });
    return { files: out, fingerprint: await sha256Files(out) };
  }
  img = await ensureUnpacked(p, img);
  const comp = opts.compression ?? 'gzip';
  const tar = requireTool('tar', 'export an image');
  const common = [
    '--warning=no-file-changed',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    '--sort=name',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
  ];
  const stage = fs.mkdtempSync(path.join(path.dirname(img.dir), `.export-${fp.slice(0, 12)}-`));
  const written: string[] = [];
  try {
    const meta: ImageMetadata = JSON.parse(JSON.stringify(img.metadata));
    if (meta.tslxc) {
      delete meta.tslxc.size;
      delete meta.tslxc.original;
      delete meta.tslxc.source;
      delete meta.tslxc.recipe_key;
      delete meta.tslxc.lxd;
      if (!opts.layer) delete meta.tslxc.layer;
    }
    let rootParent = img.dir;
    // Image files are immutable; tar's "file changed as we read it" (a ctime moved by a new hard
    // link from the build cache) is not a failure here.
    const plain = (cmd: string, args: string[], what: string) => run(cmd, args, { what, tolerate: tarFileChangedOnly });
    let exec = plain;
    if (flatten) {
      rootParent = path.join(stage, 'view');
      const mnt = path.join(rootParent, 'rootfs');
      fs.mkdirSync(mnt, { recursive: true });
      const lowers = layerDirs(p, img);
      exec = (cmd, args, what) => runOnOverlay({ lowers }, mnt, cmd, args, what, plain);
    }
    const rootDir = path.join(rootParent, 'rootfs');
    fs.writeFileSync(path.join(stage, 'metadata.yaml'), yaml.dump(meta, { noRefs: true, lineWidth: 120 }));
    fs.utimesSync(path.join(stage, 'metadata.yaml'), img.metadata.creation_date, img.metadata.creation_date);
    const templates = fs.existsSync(path.join(img.dir, 'templates')) ? ['-C', img.dir, 'templates'] : [];
    const tmpOut = (f: string) => {
      written.push(`${f}.part`);
      return `${f}.part`;
    };
    if (!opts.split) {
      const out = isDir ? path.join(target, `${fp}${EXT[comp]}`) : target;
      await exec(
        tar,
        ['-c', '-I', compressor(comp), ...common, '-f', tmpOut(out), '-C', stage, 'metadata.yaml', ...templates, '-C', rootParent, 'rootfs'],
        `Cannot export image ${fp.slice(0, 12)}`,
      );
      fs.renameSync(`${out}.part`, out);
      return { files: [out], fingerprint: await sha256Files([out]) };
    }
    const metaOut = isDir ? path.join(target, `meta-${fp}${EXT[comp]}`) : target;
    const rootOut = isDir
      ? path.join(target, opts.squashfs ? `${fp}.squashfs` : `${fp}${EXT[comp]}`)
      : `${stripExt(target)}.root${opts.squashfs ? '.squashfs' : EXT[comp]}`;
    await plain(
      tar,
      ['-c', '-I', compressor(comp), ...common, '-f', tmpOut(metaOut), '-C', stage, 'metadata.yaml', ...templates],
      `Cannot export image ${fp.slice(0, 12)}`,
    );
    if (opts.squashfs) {
      const mk = requireTool('mksquashfs', 'export a squashfs image');
      await exec(mk, [rootDir, tmpOut(rootOut), '-noappend', '-no-progress', '-comp', comp, '-xattrs'], `Cannot make the squashfs of ${fp.slice(0, 12)}`);
    } else {
      await exec(tar, ['-c', '-I', compressor(comp), ...common, '-f', tmpOut(rootOut), '-C', rootDir, '.'], `Cannot export image ${fp.slice(0, 12)}`);
    }
    fs.renameSync(`${metaOut}.part`, metaOut);
    fs.renameSync(`${rootOut}.part`, rootOut);
    return { files: [metaOut, rootOut], fingerprint: await sha256Files([metaOut, rootOut]) };
  } catch (err) {
    for (const f of written) fs.rmSync(f, { force: true });
    throw err;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * A built image's export as LXD's unified tarball, made once and kept in the image's dir under its
 * sha256 (store.ts keptExport): LXD's clients check a download's sha256 against the image's
 * fingerprint, which for a built image is a digest of its tree, so the API shows this sha256 as its
 * fingerprint. An image never changes, so neither does the file. Made in a temp dir the store's
 * sweep removes should this process die, then renamed in; the dir's mtime (the image's upload
 * time) is kept.
 */
export async function keepExport(p: Paths, img: Image): Promise<{ file: string; sha256: string }> {
  const kept = keptExport(img);
  if (kept) return kept;
  const dir = path.join(imagesDir(p), `.tmp-keep${crypto.randomBytes(4).toString('hex')}-${process.pid}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  try {
    const { fingerprint: sha256 } = await exportImage(p, img.fingerprint, path.join(dir, 'image.tar.gz'), { split: false });
    const st = fs.statSync(img.dir);
    const file = path.join(img.dir, keptExportName(sha256));
    fs.renameSync(path.join(dir, 'image.tar.gz'), file);
    fs.utimesSync(img.dir, st.atime, st.mtime);
    return { file, sha256 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function stripExt(f: string): string {
  return f.replace(/(\.tar(\.(gz|xz|zst|bz2))?|\.t[gx]z|\.squashfs)$/, '');
}

/** Adds aliases to an image that was already in the store. */
export async function addAliases(p: Paths, fingerprint: string, aliases: string[]): Promise<void> {
  if (!aliases.length) return;
  await withImagesLock(p, async () => {
    const table = readAliases(p);
    for (const a of aliases) table[a] = fingerprint;
    writeAliases(p, table);
  });
}
