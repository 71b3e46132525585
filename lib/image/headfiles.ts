import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { codecOf, type Entry } from './archive.js';

/**
 * metadata.yaml and templates/ from the head of a checked gzip tarball, without running tar (and
 * its decompressor) again: the pass's listing (tar -tR) says at which block tar read each entry's
 * header (after any extended ones), and a regular file's data follows it. Each is taken only when
 * that block is a valid header of a plain regular file of that very size (not sparse, not a
 * link); for anything else, or a file far into the archive, false: the caller extracts with tar
 * (archive.ts extractTar).
 */
const BLOCK = 512;

/**
 * What the import pass's tar walker keeps of the files it passes (native/tarwalk.c --capture):
 * those that may be metadata.yaml or templates/ (the import decides which it takes), up to a size.
 */
export const HEAD_CAPTURE = { names: ['metadata.yaml', 'templates/'], maxBytes: 64 << 10 };

/**
 * The wanted files from what the pass captured: true when it has every one of them, each a plain
 * regular file listed once; else false, and copyHeadFiles or tar takes them.
 */
export function writeCapturedFiles(dir: string, entries: Entry[], names: string[], wanted: number[], captured: Map<number, Buffer>): boolean {
  if (new Set(wanted.map((i) => names[i])).size !== wanted.length) return false;
  if (!wanted.every((i) => entries[i]!.type === '-' && captured.get(i)?.length === Number(entries[i]!.size))) return false;
  // As copyHeadFiles: dir is new and empty, and the names are checked ones.
  for (const i of wanted) {
    const dest = path.join(dir, names[i]!);
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
    fs.writeFileSync(dest, captured.get(i)!, { mode: 0o644, flag: 'wx' });
  }
  return true;
}
/** How much of the uncompressed archive is read at most: the metadata comes first in LXD's images. */
const MAX_HEAD = 16 << 20;

export async function copyHeadFiles(file: string, dir: string, entries: Entry[], names: string[], wanted: number[]): Promise<boolean> {
  const spans: { name: string; start: number; size: number }[] = [];
  // A name listed twice is tar's to settle (which one it keeps).
  if (new Set(wanted.map((i) => names[i])).size !== wanted.length) return false;
  for (const i of wanted) {
    const e = entries[i]!;
    if (e.type !== '-' || e.block === undefined || !/^\d+$/.test(e.size ?? '')) return false;
    const size = Number(e.size);
    const start = (e.block + 1) * BLOCK;
    if (start + size > MAX_HEAD) return false;
    spans.push({ name: names[i]!, start, size });
  }
  if (!spans.length) return true;
  const fd = fs.openSync(file, 'r');
  let head: Buffer;
  try {
    const first = Buffer.alloc(8);
    fs.readSync(fd, first, 0, 8, 0);
    if (codecOf(first) !== 'gzip') return false;
    head = await inflateHead(file, Math.max(...spans.map((s) => s.start + Math.ceil(s.size / BLOCK) * BLOCK)));
  } finally {
    fs.closeSync(fd);
  }
  for (const s of spans) {
    if (s.start + s.size > head.length || !plainFileHeader(head.subarray(s.start - BLOCK, s.start), s.size)) return false;
  }
  // dir is new and empty, and the names are checked ones (no "..", no absolute, below templates/):
  // nothing here follows a link.
  for (const s of spans) {
    const dest = path.join(dir, s.name);
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
    fs.writeFileSync(dest, head.subarray(s.start, s.start + s.size), { mode: 0o644, flag: 'wx' });
  }
  return true;
}

/** The first `bytes` of a gzip file's uncompressed stream (fewer if it is shorter). */
function inflateHead(file: string, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const input = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    const gunzip = zlib.createGunzip();
    const done = () => {
      input.destroy();
      gunzip.destroy();
      resolve(Buffer.concat(parts));
    };
    gunzip.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= bytes) done();
    });
    gunzip.on('end', done);
    gunzip.on('error', reject);
    input.on('error', reject);
    input.pipe(gunzip);
  });
}

/** A ustar header (valid checksum) of a regular file ("0" or NUL) holding exactly `size` bytes. */
function plainFileHeader(h: Buffer, size: number): boolean {
  if (h.length !== BLOCK || (h[156] !== 0x30 && h[156] !== 0)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  const stored = parseInt(
    h
      .toString('latin1', 148, 156)
      .replace(/[\0 ]+$/, '')
      .trim(),
    8,
  );
  if (stored !== sum) return false;
  const sizeField = h
    .toString('latin1', 124, 136)
    .replace(/[\0 ]+$/, '')
    .trim();
  return /^[0-7]+$/.test(sizeField) && parseInt(sizeField, 8) === size;
}
