import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { findTool, requireTool, run } from '../util/exec.js';

/**
 * Safe unpacking of image archives we did not make. The entry list is read and checked first
 * (tar -t, squashfs listing), and only an archive whose every entry is a plain path below its
 * root — no "..", no absolute name, no device node outside /dev, no hard link to a name outside
 * the archive, no symlink whose target climbs out of the root, no entry reached through a symlink
 * — is extracted, into a fresh dir, without -P and without following existing dirs' links.
 */
export interface Entry {
  type: string; // the mode string's first letter: - d l h c b p s
  name: string;
  link?: string;
  /** tar's size column: for a device node, "MAJOR,MINOR" */
  size?: string;
  /** where its headers begin, in 512-byte blocks of the uncompressed archive (a listing with -R) */
  block?: number;
}

const LINE = /^(\S{10}) +\d+\/\d+ +(\S+) +\S+ \S+ +"((?:[^"\\]|\\.)*)"(?: -> "((?:[^"\\]|\\.)*)"| link to "((?:[^"\\]|\\.)*)")?$/;

function unquote(s: string): string {
  // Most names have no escape: no regex pass over them.
  if (!s.includes('\\')) return s;
  return s.replace(/\\([0-7]{3}|.)/g, (_m, e: string) => {
    if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', b: '\b', a: '\x07', '\\': '\\', '"': '"', '?': '?' } as Record<string, string>)[e] ?? e;
  });
}

/** The compression an archive's first bytes show, so tar is told rather than left to guess from a pipe. */
export type Codec = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

/**
 * The first bytes of each codec. The one rule: codecOf applies it here, and the import pass's plan
 * hands it to the helper (pass.ts), which applies it to a stored copy.
 */
export const CODEC_MAGIC: [Exclude<Codec, 'none'>, Buffer][] = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['bzip2', Buffer.from('BZh', 'latin1')],
];

export function codecOf(head: Buffer): Codec {
  return CODEC_MAGIC.find(([, magic]) => head.length >= magic.length && head.subarray(0, magic.length).equals(magic))?.[0] ?? 'none';
}

function fileHead(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(8);
    return b.subarray(0, fs.readSync(fd, b, 0, 8, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The program that decompresses a codec, the fastest the host has: gzip's inflate is
 * single-threaded and the slowest step of an import, and isa-l's igzip (or pigz, which inflates
 * beside its reading and checksumming threads) does it several times faster.
 */
export function decompressor(codec: Codec): string | undefined {
  return {
    gzip: () => findTool('igzip') ?? findTool('pigz') ?? 'gzip',
    zstd: () => 'zstd',
    xz: () => 'xz',
    bzip2: () => findTool('lbzip2') ?? 'bzip2',
    none: () => undefined,
  }[codec]();
}

/** tar's arguments to read an archive of that codec. */
export function decompressArgs(codec: Codec): string[] {
  const prog = decompressor(codec);
  return prog ? [`--use-compress-program=${prog}`] : [];
}

export const LIST_ARGS = ['-tv', '--numeric-owner', '--quoting-style=c', '--full-time'];

export function listingError(stderr: string, status: number | null, what: string): TslxcError {
  const why = (stderr || '')
    .split('\n')
    .map((l) => l.replace(/^tar: /, '').trim())
    .filter((l) => l && !/^Child returned|Error is not recoverable|^$/.test(l));
  return new TslxcError(`Cannot read ${what}`, `${why[0] ?? `tar exit ${status}`} — the file is corrupt, truncated or not a tar archive`);
}

/** One line of tar's listing (LIST_ARGS) as an entry. */
export function parseListingLine(l: string, what: string): Entry {
  let block: number | undefined;
  if (l.startsWith('block ')) {
    const b = BLOCK.exec(l);
    if (b) {
      block = Number(b[1]);
      l = l.slice(b[0].length);
    }
  }
  const m = LINE.exec(l);
  if (!m) throw new TslxcError(`Cannot read ${what}`, `unexpected tar listing line: ${l.slice(0, 80)}`);
  const e: Entry = {
    type: m[1][0],
    size: m[2],
    name: unquote(m[3]),
    link: m[4] !== undefined ? unquote(m[4]) : m[5] !== undefined ? unquote(m[5]) : undefined,
  };
  if (block !== undefined) e.block = block;
  return e;
}

const BLOCK = /^block (\d+): /;

/** tar -tR's own mark of the archive's end (names are quoted, so no entry's line looks like it). */
export function isListingEndMark(l: string): boolean {
  return /^block \d+: \*\* (?:Block of NULs|End of File) \*\*$/.test(l);
}

function parseListing(stdout: string, what: string): Entry[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => parseListingLine(l, what));
}

/** tar -t of a (possibly compressed: gzip, xz, zstd, bzip2) archive. */
export function listTar(file: string, what: string): Entry[] {
  const tar = requireTool('tar', 'read an image archive');
  const r = spawnSync(tar, [...LIST_ARGS, ...decompressArgs(codecOf(fileHead(file))), '-f', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw new TslxcError(`Cannot read ${what}`, r.error.message);
  if (r.status !== 0) throw listingError(r.stderr, r.status, what);
  return parseListing(r.stdout, what);
}

/**
 * Stores `src` as `dest` (a new file, root's alone) with the kernel's copy: copy_file_range, or a
 * reflink where the filesystem has them. Node never carries the bytes; what is then hashed and
 * listed is this stored copy, so the listing, the fingerprint and the store are the same bytes,
 * whatever happens to `src` meanwhile.
 */
export async function storeCopy(src: string, dest: string, what: string): Promise<void> {
  try {
    await fs.promises.copyFile(src, dest, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
    await fs.promises.chmod(dest, 0o600);
  } catch (err) {
    throw new TslxcError(`Cannot read ${what}`, (err as Error).message);
  }
}

/** A child's end, with what it said on stderr. */
interface Tracked {
  child: ChildProcess;
  name: string;
  stderr: string;
  done: Promise<{ code: number | null; signal: string | null }>;
}

function track(child: ChildProcess, name: string): Tracked {
  const t: Tracked = {
    child,
    name,
    stderr: '',
    done: new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal }));
    }),
  };
  child.stderr!.on('data', (d: Buffer) => (t.stderr += d.toString()));
  return t;
}

/**
 * The sha256 of the files' bytes one after the other (LXD's fingerprint of a split image is that
 * of both files). By openssl where the host has it: node's own sha256 runs at a fraction of the
 * speed of libcrypto's (SHA-NI), and a child hashes beside the listing, on another core.
 */
export async function sha256Of(files: string[]): Promise<string> {
  const openssl = findTool('openssl');
  if (!openssl) return sha256InNode(files);
  const procs: Tracked[] = [];
  let input: 'ignore' | Readable = 'ignore';
  const args = ['dgst', '-sha256', '-r'];
  if (files.length === 1) args.push(path.resolve(files[0]!));
  else {
    const cat = spawn('cat', ['--', ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(track(cat, 'cat'));
    input = cat.stdout!;
  }
  const dgst = spawn(openssl, args, { stdio: [input, 'pipe', 'pipe'] });
  procs.push(track(dgst, 'openssl'));
  if (typeof input !== 'string') input.destroy();
  let out = '';
  dgst.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const ends = await Promise.all(procs.map((p) => p.done));
  const m = /^([0-9a-f]{64})[ \n]/.exec(out);
  const failed = ends.findIndex((e) => e.code !== 0);
  if (failed >= 0 || !m) {
    const why = (failed >= 0 ? procs[failed]!.stderr : out).trim().split('\n')[0];
    throw new TslxcError(`Cannot read ${files.map((f) => path.basename(f)).join(' and ')}`, why || 'its sha256 could not be computed');
  }
  return m[1]!;
}

export async function sha256InNode(files: string[]): Promise<string> {
  const h = crypto.createHash('sha256');
  for (const f of files) {
    for await (const chunk of fs.createReadStream(f, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

/**
 * tar -t of a stored archive, the decompressor reading the file itself and feeding tar directly
 * (tar's own -I would relay every byte through one more pipe). Undefined for a squashfs, which is
 * listed by unsquashfs (listSquashfs).
 */
export async function listStored(file: string, what: string): Promise<Entry[] | undefined> {
  const head = fileHead(file);
  if (head.toString('latin1', 0, 4) === 'hsqs') return undefined;
  const tarBin = requireTool('tar', 'read an image archive');
  const prog = decompressor(codecOf(head));
  const procs: Tracked[] = [];
  const fd = fs.openSync(file, 'r');
  let tar: ChildProcess;
  try {
    if (prog) {
      const dec = spawn(prog, ['-dc'], { stdio: [fd, 'pipe', 'pipe'] });
      procs.push(track(dec, prog));
      // 128 KiB records, reassembled from a pipe's partial reads: a tenth of tar's read calls.
      tar = spawn(tarBin, [...LIST_ARGS, '-b', '256', '-B', '-f', '-'], { stdio: [dec.stdout!, 'pipe', 'pipe'] });
      // Ours closed, so a tar that stops early makes the decompressor stop (SIGPIPE), not block.
      dec.stdout!.destroy();
    } else {
      // A file tar can seek in: it skips the members' data instead of reading it.
      tar = spawn(tarBin, [...LIST_ARGS, '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    }
  } finally {
    fs.closeSync(fd);
  }
  procs.push(track(tar, 'tar'));
  const stdout: Buffer[] = [];
  tar.stdout!.on('data', (d: Buffer) => stdout.push(d));
  const ends = await Promise.all(procs.map((p) => p.done));
  const tarEnd = ends[ends.length - 1]!;
  if (tarEnd.code !== 0) throw listingError(procs[procs.length - 1]!.stderr, tarEnd.code, what);
  // A decompressor that failed (a corrupt or truncated stream) fails the import, unless tar had
  // read the whole archive and closed the pipe on the bytes after its end.
  if (procs.length > 1 && ends[0]!.code !== 0 && ends[0]!.signal !== 'SIGPIPE')
    throw listingError(procs[0]!.stderr.replace(new RegExp(`^${procs[0]!.name}: `, 'gm'), ''), ends[0]!.code, what);
  return parseListing(Buffer.concat(stdout).toString('utf8'), what);
}

/** A unified tarball's one pass, running (begin.ts). */
export interface ImportPass {
  /** the listing and the sha256 of the bytes stored, once the pass is done */
  result(): Promise<{
    entries: Entry[];
    sha256: string;
    /** the entries' clean names, when the pass checked them (UNIFIED_CHECKS) as they came */ names?: string[];
    /** the data of small files the pass read on its way (headfiles.ts HEAD_CAPTURE), by entry index */
    captured?: Map<number, Buffer>;
  }>;
}

/** Normalise an entry name ("./a//b/" → "a/b"); refuse absolute names and "..". */
export function cleanName(name: string, what: string): string {
  // Most names are clean already (tar lists "rootfs/usr/bin/ls"): one test instead of a split and a join.
  if (CLEAN.test(name) && !DOT_PART.test(name)) return name;
  if (name.startsWith('/')) throw new TslxcError(`Refusing ${what}`, `entry "${show(name)}" has an absolute path`);
  const parts = name.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw new TslxcError(`Refusing ${what}`, `entry "${show(name)}" contains ".."`);
  return parts.join('/');
}

/** A name with no empty part (no leading, doubled or trailing "/") and no "." or ".." part. */
const CLEAN = /^[^/]+(?:\/[^/]+)*$/;
const DOT_PART = /(?:^|\/)\.\.?(?:\/|$)/;

const show = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);

export interface CheckOptions {
  roots?: string[];
  rootfsPrefix?: string | null;
  whiteouts?: boolean;
}

/** A unified tarball's checks (metadata.yaml, rootfs/, templates/). */
export const UNIFIED_CHECKS: CheckOptions = { roots: ['metadata.yaml', 'rootfs', 'templates'], rootfsPrefix: 'rootfs' };

/**
 * Checks every entry. `roots` are the top-level names allowed (e.g. metadata.yaml, rootfs,
 * templates); `rootfsPrefix` is where the container's root is inside the archive ("rootfs" in a
 * unified tarball, "" in a split rootfs) — symlinks are judged relative to it.
 */
export function checkEntries(entries: Entry[], what: string, opts: CheckOptions): string[] {
  const c = new EntryChecker(what, opts);
  for (const e of entries) c.add(e);
  return c.finish();
}

/**
 * checkEntries one entry at a time, as a listing streams (pass.ts): what an entry alone decides
 * at add(), what needs them all (nothing reached through a symlink of the archive, hard links to
 * names in it) at finish(). Returns the entries' clean names.
 */
export class EntryChecker {
  private readonly entries: Entry[] = [];
  private readonly names: string[] = [];
  private readonly symlinks = new Set<string>();

  constructor(
    private readonly what: string,
    private readonly opts: CheckOptions,
  ) {}

  add(e: Entry): void {
    const what = this.what;
    const n = cleanName(e.name, what);
    this.entries.push(e);
    this.names.push(n);
    if (n === '') {
      if (e.type !== 'd') throw new TslxcError(`Refusing ${what}`, 'its root entry is not a directory');
      return;
    }
    const { roots, rootfsPrefix: prefix } = this.opts;
    const top = n.includes('/') ? n.slice(0, n.indexOf('/')) : n;
    if (roots && !roots.includes(top)) throw new TslxcError(`Refusing ${what}`, `unexpected entry "${show(n)}" (expected ${roots.join(', ')})`);
    const inRoot = prefix === '' ? n : prefix && (n === prefix || n.startsWith(`${prefix}/`)) ? n.slice(prefix.length + 1) : undefined;
    switch (e.type) {
      case '-':
      case 'd':
      case 'p':
      case 'h':
        break;
      case 'c':
        // An image layer (a registry node) marks deleted names with overlayfs whiteouts: 0/0 devices.
        if (this.opts.whiteouts && inRoot !== undefined && e.size === '0,0') break;
        if (inRoot === undefined || !inRoot.startsWith('dev/'))
          throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" is a character device outside /dev`);
        break;
      case 'b':
        throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" is a block device`);
      case 'l': {
        this.symlinks.add(n);
        const t = e.link ?? '';
        if (inRoot === undefined) throw new TslxcError(`Refusing ${what}`, `symlink "${show(n)}" outside the root filesystem`);
        // Absolute targets resolve inside the container's root; relative ones must not climb out.
        if (!t.startsWith('/')) {
          const depth = inRoot.split('/').length - 1;
          let level = depth;
          for (const seg of t.split('/')) {
            if (seg === '..') level--;
            else if (seg !== '' && seg !== '.') level++;
            if (level < 0) throw new TslxcError(`Refusing ${what}`, `symlink "${show(n)}" points outside the root filesystem ("${show(t)}")`);
          }
        }
        break;
      }
      default:
        throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" has an unsupported type "${e.type}"`);
    }
  }

  finish(): string[] {
    const { what, entries, names, symlinks } = this;
    const all = new Set(names);
    // The symlink a dir is (or lies under), each dir worked out once: entries share their parents.
    const above = new Map<string, string | undefined>();
    const linkAbove = (dir: string): string | undefined => {
      if (above.has(dir)) return above.get(dir);
      const slash = dir.lastIndexOf('/');
      const link = (slash > 0 ? linkAbove(dir.slice(0, slash)) : undefined) ?? (symlinks.has(dir) ? dir : undefined);
      above.set(dir, link);
      return link;
    };
    entries.forEach((e, i) => {
      const n = names[i]!;
      // Nothing may be reached through a symlink the archive itself makes.
      if (symlinks.size && n.includes('/')) {
        const link = linkAbove(n.slice(0, n.lastIndexOf('/')));
        if (link) throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" lies under the symlink "${show(link)}"`);
      }
      if (e.type === 'h') {
        const target = cleanName(e.link ?? '', what);
        if (!all.has(target)) throw new TslxcError(`Refusing ${what}`, `hard link "${show(n)}" points outside the archive ("${show(e.link ?? '')}")`);
      }
    });
    return names;
  }
}

/**
 * Extracts a checked archive into `dir` (which must be new and empty). `members`: only those
 * (exact names as listed), each once, so tar stops reading as soon as it has them all.
 */
export async function extractTar(file: string, dir: string, what: string, members?: string[]): Promise<void> {
  const [tar, ...args] = extractTarArgv(file, dir, members);
  await run(tar, args, { what: `Cannot unpack ${what}` });
}

/** The command extractTar runs, for a caller that runs it its own way (in a pool, in the background). */
export function extractTarArgv(file: string, dir: string, members?: string[]): string[] {
  const tar = requireTool('tar', 'unpack an image archive');
  const only = members ? ['--occurrence', '--no-wildcards', '--', ...members] : [];
  return [
    tar,
    '-x',
    '--numeric-owner',
    '--same-owner',
    '--same-permissions',
    '--no-overwrite-dir',
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    ...decompressArgs(codecOf(fileHead(file))),
    '-f',
    file,
    '-C',
    dir,
    ...only,
  ];
}

export function isSquashfs(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    return b.toString('latin1') === 'hsqs';
  } finally {
    fs.closeSync(fd);
  }
}

const SQ_LINE = /^(\S{10}) +\d+\/\d+ +\S+ +\S+ \S+ (.*?)(?: -> (.*))?$/;

/** A squashfs listing (unsquashfs -lln), in the same shape as a tar one; names are relative. */
export function listSquashfs(file: string, what: string): Entry[] {
  const unsq = requireTool('unsquashfs', 'read a squashfs image');
  const r = spawnSync(unsq, ['-lln', '-d', '', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0)
    throw new TslxcError(
      `Cannot read ${what}`,
      `${(r.stderr || r.stdout || '').trim().split('\n').slice(-1)[0] || `unsquashfs exit ${r.status}`} — the file is corrupt or truncated`,
    );
  return r.stdout
    .split('\n')
    .filter((l) => /^[-dlcbps][rwxsStT-]{9} /.test(l))
    .map((l) => {
      const m = SQ_LINE.exec(l);
      if (!m) throw new TslxcError(`Cannot read ${what}`, `unexpected listing line: ${l.slice(0, 80)}`);
      return { type: m[1][0], name: m[2].replace(/^\//, ''), link: m[3] };
    });
}

export async function extractSquashfs(file: string, dir: string, what: string): Promise<void> {
  const [unsq, ...args] = extractSquashfsArgv(file, dir);
  await run(unsq, args, { what: `Cannot unpack ${what}` });
}

/** The command extractSquashfs runs; `dir` must not exist yet. */
export function extractSquashfsArgv(file: string, dir: string): string[] {
  return [requireTool('unsquashfs', 'unpack a squashfs image'), '-n', '-f', '-d', dir, file];
}

/** Compressor for a file name: .tar.gz/.tgz → gzip, .tar.xz → xz, .tar.zst → zstd, .tar → none. */
export function compressionFor(file: string): 'gzip' | 'xz' | 'zstd' | 'none' {
  const f = path.basename(file);
  if (/\.(tar\.gz|tgz)$/.test(f)) return 'gzip';
  if (/\.(tar\.xz|txz)$/.test(f)) return 'xz';
  if (/\.(tar\.zst|tzst)$/.test(f)) return 'zstd';
  return 'gzip';
}
