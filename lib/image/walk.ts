import type { Entry } from './archive.js';

/**
 * The records of native/tarwalk.c (the import pass's listing when the walker ran; its header says
 * the format), parsed as they stream. The walker only reads headers: the entries it gives go
 * through the same EntryChecker as tar's listing. Names are kept byte for byte (latin1: one char
 * per byte, as the C-quoted tar listing's octal escapes decode), so no two names become one.
 */
export const WALK_MAGIC = Buffer.from('\0tslxc-walk-1\n', 'latin1');

export type WalkEvent =
  | { kind: 'entry'; entry: Entry }
  | { kind: 'unsupported'; why: string }
  | { kind: 'end' }
  /** the stored copy's sha256 (the walker made the copy) */
  | { kind: 'hash'; sha256: string }
  /** a captured file's data (--capture), for the entry of that index */
  | { kind: 'file'; index: number; data: Buffer }
  /** the walker's copy failed */
  | { kind: 'copy-failed'; why: string };

export class WalkParser {
  private pending: Buffer = Buffer.alloc(0);
  private sawMagic = false;

  /** Bytes as they come; returns the events of the records they complete. */
  push(chunk: Buffer): WalkEvent[] {
    let b = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const events: WalkEvent[] = [];
    if (!this.sawMagic) {
      if (b.length < WALK_MAGIC.length) {
        this.pending = b;
        return events;
      }
      if (!b.subarray(0, WALK_MAGIC.length).equals(WALK_MAGIC)) throw new Error('not a tar walk');
      this.sawMagic = true;
      b = b.subarray(WALK_MAGIC.length);
    }
    let at = 0;
    while (b.length - at >= 5) {
      const len = b.readUInt32LE(at + 1);
      if (b.length - at - 5 < len) break;
      const kind = String.fromCharCode(b[at]!);
      if (kind === 'E') {
        // The hot record (one per entry): read in place, no slice of its own.
        events.push({ kind: 'entry', entry: entryOf(b, at + 5) });
        at += 5 + len;
        continue;
      }
      const body = b.subarray(at + 5, at + 5 + len);
      if (kind === 'U') events.push({ kind: 'unsupported', why: body.toString('latin1') });
      else if (kind === 'Z') events.push({ kind: 'end' });
      else if (kind === 'F') events.push({ kind: 'file', index: body.readUInt32LE(0), data: Buffer.from(body.subarray(4)) });
      else if (kind === 'H') events.push({ kind: 'hash', sha256: body.toString('latin1') });
      else if (kind === 'C') events.push({ kind: 'copy-failed', why: body.toString('latin1') });
      else throw new Error(`unknown tar walk record "${kind}"`);
      at += 5 + len;
    }
    this.pending = Buffer.from(b.subarray(at));
    return events;
  }

  /** Bytes left over at the stream's end: a record cut short. */
  get leftover(): number {
    return this.pending.length;
  }
}

/** TYPE MODE:u32 UID:u64 GID:u64 SIZE:u64 MTIME:i64 MAJOR:u32 MINOR:u32 BLOCK:u64 NAME-LEN:u32 NAME LINK-LEN:u32 LINK */
function entryOf(b: Buffer, at: number): Entry {
  const type = String.fromCharCode(b[at]!);
  const nameLen = b.readUInt32LE(at + 53);
  const name = b.toString('latin1', at + 57, at + 57 + nameLen);
  const size = type === 'c' || type === 'b' ? `${b.readUInt32LE(at + 37)},${b.readUInt32LE(at + 41)}` : String(u64(b, at + 21));
  const e: Entry = { type, name, size, block: u64(b, at + 45) };
  if (type === 'h' || type === 'l') {
    const linkLen = b.readUInt32LE(at + 57 + nameLen);
    e.link = b.toString('latin1', at + 61 + nameLen, at + 61 + nameLen + linkLen);
  }
  return e;
}

/** A u64 as a number (sizes and block numbers: far below 2^53), without a BigInt per field. */
const u64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
