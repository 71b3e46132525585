import zlib from 'node:zlib';

/**
 * A minimal ustar writer, so tests can make archives that `tar` itself would refuse to create
 * (names with "..", absolute names, device nodes, hard links to outside names).
 */
export interface TarEntry {
  name: string;
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  content?: string | Buffer;
  link?: string;
  mode?: number;
  major?: number;
  minor?: number;
}

function header(e: TarEntry): Buffer {
  const h = Buffer.alloc(512);
  const body = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
  const put = (s: string, off: number, len: number) => h.write(s.slice(0, len), off, 'latin1');
  const oct = (n: number, off: number, len: number) => put(n.toString(8).padStart(len - 1, '0') + '\0', off, len);
  put(e.name, 0, 100);
  oct(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  oct(e.type === '5' || e.type === '2' || e.type === '1' ? 0 : body.length, 124, 12);
  oct(1700000000, 136, 12);
  h.fill(' ', 148, 156);
  put(e.type ?? '0', 156, 1);
  put(e.link ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  oct(e.major ?? 0, 329, 8);
  oct(e.minor ?? 0, 337, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

export function makeTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e));
    const body = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
    if ((e.type ?? '0') === '0' && body.length) {
      parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const makeTarGz = (entries: TarEntry[]): Buffer => zlib.gzipSync(makeTar(entries));
