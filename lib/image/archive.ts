import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { requireTool, run } from '../util/exec.js';

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
}

const LINE = /^(\S{10}) +\d+\/\d+ +(\S+) +\S+ \S+ +"((?:[^"\\]|\\.)*)"(?: -> "((?:[^"\\]|\\.)*)"| link to "((?:[^"\\]|\\.)*)")?$/;

function unquote(s: string): string {
  return s.replace(/\\([0-7]{3}|.)/g, (_m, e: string) => {
    if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', b: '\b', a: '\x07', '\\': '\\', '"': '"', '?': '?' } as Record<string, string>)[e] ?? e;
  });
}

/** tar -t of a (possibly compressed: gzip, xz, zstd, bzip2 are detected by tar) archive. */
export function listTar(file: string, what: string): Entry[] {
  const tar = requireTool('tar', 'read an image archive');
  const r = spawnSync(tar, ['-tv', '--numeric-owner', '--quoting-style=c', '--full-time', '-f', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw new TslxcError(`Cannot read ${what}`, r.error.message);
  if (r.status !== 0) {
    const why = (r.stderr || '').split('\n').map((l) => l.replace(/^tar: /, '').trim()).filter((l) => l && !/^Child returned|Error is not recoverable|^$/.test(l));
    throw new TslxcError(`Cannot read ${what}`, `${why[0] ?? `tar exit ${r.status}`} — the file is corrupt, truncated or not a tar archive`);
  }
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const m = LINE.exec(l);
    if (!m) throw new TslxcError(`Cannot read ${what}`, `unexpected tar listing line: ${l.slice(0, 80)}`);
    return { type: m[1][0], size: m[2], name: unquote(m[3]), link: m[4] !== undefined ? unquote(m[4]) : m[5] !== undefined ? unquote(m[5]) : undefined };
  });
}

/** Normalise an entry name ("./a//b/" → "a/b"); refuse absolute names and "..". */
export function cleanName(name: string, what: string): string {
  if (name.startsWith('/')) throw new TslxcError(`Refusing ${what}`, `entry "${show(name)}" has an absolute path`);
  const parts = name.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw new TslxcError(`Refusing ${what}`, `entry "${show(name)}" contains ".."`);
  return parts.join('/');
}

const show = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);

/**
 * Checks every entry. `roots` are the top-level names allowed (e.g. metadata.yaml, rootfs,
 * templates); `rootfsPrefix` is where the container's root is inside the archive ("rootfs" in a
 * unified tarball, "" in a split rootfs) — symlinks are judged relative to it.
 */
export function checkEntries(entries: Entry[], what: string, opts: { roots?: string[]; rootfsPrefix?: string | null; whiteouts?: boolean }): string[] {
  const names = entries.map((e) => cleanName(e.name, what));
  const all = new Set(names);
  const symlinks = new Set<string>();
  entries.forEach((e, i) => e.type === 'l' && symlinks.add(names[i]));
  const prefix = opts.rootfsPrefix;
  entries.forEach((e, i) => {
    const n = names[i];
    if (n === '') {
      if (e.type !== 'd') throw new TslxcError(`Refusing ${what}`, 'its root entry is not a directory');
      return;
    }
    const top = n.split('/')[0];
    if (opts.roots && !opts.roots.includes(top)) throw new TslxcError(`Refusing ${what}`, `unexpected entry "${show(n)}" (expected ${opts.roots.join(', ')})`);
    const inRoot = prefix === '' ? n : prefix && (n === prefix || n.startsWith(`${prefix}/`)) ? n.slice(prefix.length + 1) : undefined;
    // Nothing may be reached through a symlink the archive itself makes.
    const parts = n.split('/');
    for (let k = 1; k < parts.length; k++) {
      if (symlinks.has(parts.slice(0, k).join('/'))) throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" lies under the symlink "${show(parts.slice(0, k).join('/'))}"`);
    }
    switch (e.type) {
      case '-':
      case 'd':
      case 'p':
        break;
      case 'c':
        // An image layer (a registry node) marks deleted names with overlayfs whiteouts: 0/0 devices.
        if (opts.whiteouts && inRoot !== undefined && e.size === '0,0') break;
        if (inRoot === undefined || !inRoot.startsWith('dev/')) throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" is a character device outside /dev`);
        break;
      case 'b':
        throw new TslxcError(`Refusing ${what}`, `entry "${show(n)}" is a block device`);
      case 'h': {
        const target = cleanName(e.link ?? '', what);
        if (!all.has(target)) throw new TslxcError(`Refusing ${what}`, `hard link "${show(n)}" points outside the archive ("${show(e.link ?? '')}")`);
        break;
      }
      case 'l': {
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
  });
  return names;
}

/** Extracts a checked archive into `dir` (which must be new and empty). */
export async function extractTar(file: string, dir: string, what: string): Promise<void> {
  const tar = requireTool('tar', 'unpack an image archive');
  await run(tar, ['-x', '--numeric-owner', '--same-owner', '--same-permissions', '--no-overwrite-dir', '--xattrs', '--xattrs-include=*', '--acls', '-f', file, '-C', dir], {
    what: `Cannot unpack ${what}`,
  });
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
  if (r.status !== 0) throw new TslxcError(`Cannot read ${what}`, `${(r.stderr || r.stdout || '').trim().split('\n').slice(-1)[0] || `unsquashfs exit ${r.status}`} — the file is corrupt or truncated`);
  return r.stdout.split('\n').filter((l) => /^[-dlcbps][rwxsStT-]{9} /.test(l)).map((l) => {
    const m = SQ_LINE.exec(l);
    if (!m) throw new TslxcError(`Cannot read ${what}`, `unexpected listing line: ${l.slice(0, 80)}`);
    return { type: m[1][0], name: m[2].replace(/^\//, ''), link: m[3] };
  });
}

export async function extractSquashfs(file: string, dir: string, what: string): Promise<void> {
  const unsq = requireTool('unsquashfs', 'unpack a squashfs image');
  await run(unsq, ['-n', '-f', '-d', dir, file], { what: `Cannot unpack ${what}` });
}

/** Compressor for a file name: .tar.gz/.tgz → gzip, .tar.xz → xz, .tar.zst → zstd, .tar → none. */
export function compressionFor(file: string): 'gzip' | 'xz' | 'zstd' | 'none' {
  const f = path.basename(file);
  if (/\.(tar\.gz|tgz)$/.test(f)) return 'gzip';
  if (/\.(tar\.xz|txz)$/.test(f)) return 'xz';
  if (/\.(tar\.zst|tzst)$/.test(f)) return 'zstd';
  return 'gzip';
}
