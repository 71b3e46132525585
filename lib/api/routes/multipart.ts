import fs from 'node:fs';
import path from 'node:path';
import { ApiError } from '../types.js';

/**
 * A multipart/form-data body (RFC 7578) streamed into files, one per part, as `lxc image import
 * META ROOTFS` sends a split image: parts are written as they arrive, never held whole, and the
 * total is bounded. Only the parts named in `names` are taken; any other is refused.
 */

const MAX_HEADERS = 16 * 1024;

export interface ReceivedPart {
  /** the form field's name */
  name: string;
  file: string;
  size: number;
  /** the part's first bytes (its format) */
  head: Buffer;
}

export function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  if (!m) throw new ApiError(400, 'The multipart upload has no boundary');
  return m[1] ?? m[2]!;
}

export async function receiveParts(body: AsyncIterable<Buffer>, boundary: string, dir: string, names: string[], limit: number): Promise<ReceivedPart[]> {
  const delim = Buffer.from(`\r\n--${boundary}`);
  const parts: ReceivedPart[] = [];
  let state: 'preamble' | 'delimited' | 'headers' | 'body' | 'done' = 'preamble';
  // The first delimiter has no CRLF before it: one is supplied, so every delimiter looks alike.
  let buf: Buffer = Buffer.from('\r\n');
  let out: fs.promises.FileHandle | undefined;
  let part: ReceivedPart | undefined;
  let total = 0;
  const write = async (data: Buffer) => {
    if (!data.length) return;
    if (part!.head.length < 8) part!.head = Buffer.concat([part!.head, data.subarray(0, 8 - part!.head.length)]);
    part!.size += data.length;
    await out!.write(data);
  };
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > limit) throw new ApiError(413, `The upload passed ${limit} bytes, the most that can be uploaded here`);
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        if (state === 'preamble' || state === 'body') {
          const i = buf.indexOf(delim);
          // What cannot be the start of a delimiter is written (a part) or dropped (the preamble).
          const safe = i < 0 ? Math.max(0, buf.length - delim.length + 1) : i;
          if (state === 'body') await write(buf.subarray(0, safe));
          buf = buf.subarray(i < 0 ? safe : i + delim.length);
          if (i < 0) break;
          if (state === 'body') {
            await out!.close();
            out = undefined;
            parts.push(part!);
          }
          state = 'delimited';
        }
        if (state === 'delimited') {
          if (buf.length < 2) break;
          const tail = buf.toString('latin1', 0, 2);
          if (tail === '--') {
            state = 'done';
            break;
          }
          if (tail !== '\r\n') throw new ApiError(400, 'Malformed multipart upload');
          buf = buf.subarray(2);
          state = 'headers';
        }
        if (state === 'headers') {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEADERS) throw new ApiError(400, 'Malformed multipart upload: part headers too long');
            break;
          }
          const headers = buf.toString('utf8', 0, end);
          buf = buf.subarray(end + 4);
          const name = /^content-disposition:.*;\s*name="([^"]*)"/im.exec(headers)?.[1] ?? '';
          if (!names.includes(name)) throw new ApiError(400, `Unexpected part "${name.slice(0, 40)}" in the multipart upload (expected ${names.join(', ')})`);
          if (parts.some((p) => p.name === name)) throw new ApiError(400, `Part "${name}" sent twice in the multipart upload`);
          part = { name, file: path.join(dir, `part-${name}`), size: 0, head: Buffer.alloc(0) };
          out = await fs.promises.open(part.file, 'wx', 0o600);
          state = 'body';
          continue;
        }
        if (state === 'done') break;
      }
      if (state === 'done') break;
    }
  } finally {
    await out?.close();
  }
  if (state !== 'done') throw new ApiError(400, 'The multipart upload ended early');
  return parts;
}
