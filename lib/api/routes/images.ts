import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';
import { aliasShape, imageShape, imageWritable, originalFile } from '../shapes/image.js';
import { asClientError, body, created, enc, etagOf, optString, recursion, reqString, requireUnrestricted } from './rest.js';

/**
 * /1.0/images and /1.0/images/aliases over the store `tslxc image` manages (its images lock, its
 * import with every check of the archive, its in-use refusals). An upload is streamed to a temp
 * dir inside the store, bounded, then imported as `tslxc image import FILE` does.
 */

const store = () => import('../../image/store.js');
const manage = () => import('../../image/manage.js');
const url = (fp: string) => `/1.0/images/${fp}`;
const aliasUrl = (name: string) => `/1.0/images/aliases/${enc(name)}`;

/** The most an upload may be, unless TSLXC_API_MAX_UPLOAD (bytes) says otherwise. */
const DEFAULT_MAX_UPLOAD = 16 * 1024 ** 3;
/** Room an upload must leave on the state dir's filesystem (the import copies it once more). */
const FREE_RESERVE = 512 * 1024 ** 2;

/** By full fingerprint or a unique prefix, as LXD's /1.0/images/{fingerprint}; never by alias. */
async function imageByFingerprint(req: ApiRequest) {
  const ref = req.params.fingerprint;
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new ApiError(404, `Image "${ref.slice(0, 70)}" not found`);
  const { requireImage } = await store();
  return requireImage(req.ctx.paths, ref);
}

function maxUpload(free: number): number {
  const configured = Number(process.env.TSLXC_API_MAX_UPLOAD);
  const limit = Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_MAX_UPLOAD;
  return Math.min(limit, Math.max(0, free - FREE_RESERVE));
}

/**
 * The request body into DIR/upload.tar[.gz|...] (named by its first bytes, as the import keeps the
 * file under that name and an export gives it back). Beyond the limit the transfer is cut with 413.
 */
async function receiveUpload(req: ApiRequest, dir: string): Promise<string> {
  const st = fs.statfsSync(dir);
  const limit = maxUpload(st.bavail * st.bsize);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new ApiError(413, `The image is ${declared} bytes; at most ${limit} can be uploaded here`);
  const part = path.join(dir, 'upload.part');
  let bytes = 0;
  let head = Buffer.alloc(0);
  await pipeline(
    req.raw,
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        bytes += chunk.length;
        if (bytes > limit) throw new ApiError(413, `The upload passed ${limit} bytes, the most that can be uploaded here`);
        if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8)]);
        yield chunk;
      }
    },
    fs.createWriteStream(part, { mode: 0o600 }),
  );
  if (!bytes) throw new ApiError(400, 'The upload is empty: post the image tarball as the body');
  const { codecOf } = await import('../../image/archive.js');
  const ext = { gzip: '.tar.gz', zstd: '.tar.zst', xz: '.tar.xz', bzip2: '.tar.bz2', none: '.tar' }[codecOf(head)];
  const file = path.join(dir, `upload${ext}`);
  fs.renameSync(part, file);
  return file;
}

/** A temp dir in the store, named as addImage's sweep expects (`.tmp-...-PID`): a killed server's is removed by the next import. */
async function storeTemp(req: ApiRequest, what: string): Promise<string> {
  const { imagesDir } = await import('../../state/paths.js');
  const { sweepDead } = await store();
  const root = imagesDir(req.ctx.paths);
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  // What a killed server left (an upload cut short, an export being sent) goes now.
  sweepDead(root, /^\.tmp-(upload|export)[0-9a-f]+-(\d+)$/);
  const dir = path.join(root, `.tmp-${what}${randomBytes(4).toString('hex')}-${process.pid}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

async function upload(req: ApiRequest) {
  requireUnrestricted(req);
  const ctype = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  if (ctype === 'application/json') {
    const b = await body(req);
    const src = (b.source ?? {}) as { type?: unknown };
    throw new ApiError(400, `Images can only be uploaded as a file here (source type "${String(src.type ?? '').slice(0, 40)}" is not supported)`);
  }
  if (ctype.startsWith('multipart/')) throw new ApiError(400, 'Split images cannot be uploaded: post a unified tarball (metadata.yaml, rootfs/, templates/)');
  const expected = req.headers['x-lxd-fingerprint'] ? String(req.headers['x-lxd-fingerprint']) : undefined;
  const dir = await storeTemp(req, 'upload');
  let file: string;
  try {
    file = await receiveUpload(req, dir);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const paths = req.ctx.paths;
  const op = req.operations.start({
    class: 'task',
    description: 'Downloading image',
    async run() {
      try {
        const { importImage } = await import('../../image/lxd.js');
        const r = await asClientError(() => importImage(paths, file, undefined, []));
        const fp = r.image.fingerprint;
        if (expected && expected !== fp) {
          // Imported just now: taken out again, as nothing of a refused upload may stay.
          if (!r.existed) await deleteImage(req, fp);
          throw new ApiError(400, `The image's fingerprint is ${fp}, not the ${expected.slice(0, 64)} the client gave`);
        }
        if (!r.existed) req.events.lifecycle('image-created', url(fp));
        return { fingerprint: fp, size: String(fs.statSync(originalFile(r.image) ?? file).size) };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  });
  return { type: 'async' as const, operation: op };
}

async function deleteImage(req: ApiRequest, fp: string): Promise<void> {
  const { deleteImage: del } = await manage();
  const { forgetImageInPools } = await import('../../storage/spares.js');
  await del(req.ctx.paths, fp, { force: false, forgetInPools: (f) => forgetImageInPools(req.ctx.paths, f) });
}

/**
 * The image as LXD's unified tarball: an imported one's kept file (so the client's check of its
 * sha256 against the fingerprint holds), any other packed anew into a temp file sent once.
 */
async function exportRoute(req: ApiRequest) {
  const img = await imageByFingerprint(req);
  const orig = originalFile(img);
  const headers = (name: string, size: number) => ({
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': `attachment; filename=${name}`,
    'Content-Length': String(size),
  });
  if (orig) {
    const name = `${img.fingerprint}${path.basename(orig).replace(/^meta/, '')}`;
    return { type: 'raw' as const, headers: headers(name, fs.statSync(orig).size), body: fs.createReadStream(orig) };
  }
  const dir = await storeTemp(req, 'export');
  try {
    const file = path.join(dir, `${img.fingerprint}.tar.gz`);
    const { exportImage } = await import('../../image/lxd.js');
    await exportImage(req.ctx.paths, img.fingerprint, file, { split: false });
    const stream = fs.createReadStream(file);
    stream.once('close', () => fs.rmSync(dir, { recursive: true, force: true }));
    return { type: 'raw' as const, headers: headers(path.basename(file), fs.statSync(file).size), body: stream };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/1.0/images',
    async handler(req) {
      const { listImages } = await store();
      const images = listImages(req.ctx.paths).sort((a, b) => a.metadata.creation_date - b.metadata.creation_date);
      if (!recursion(req)) return sync(images.map((i) => url(i.fingerprint)));
      return sync(images.map(imageShape));
    },
  },
  { method: 'POST', path: '/1.0/images', handler: upload },
  {
    method: 'GET',
    path: '/1.0/images/aliases',
    async handler(req) {
      const { readAliases } = await store();
      const table = Object.entries(readAliases(req.ctx.paths)).sort(([a], [b]) => a.localeCompare(b));
      if (!recursion(req)) return sync(table.map(([a]) => aliasUrl(a)));
      return sync(table.map(([a, fp]) => aliasShape(a, fp)));
    },
  },
  {
    method: 'POST',
    path: '/1.0/images/aliases',
    async handler(req) {
      requireUnrestricted(req);
      const b = await body(req);
      const name = reqString(b, 'name');
      const target = reqString(b, 'target');
      optString(b, 'description');
      const { createAlias } = await manage();
      await asClientError(() => createAlias(req.ctx.paths, name, target));
      req.events.lifecycle('image-alias-created', aliasUrl(name), { target });
      return created(aliasUrl(name));
    },
  },
  {
    method: 'GET',
    path: '/1.0/images/aliases/{name}',
    async handler(req) {
      const { readAliases } = await store();
      const fp = readAliases(req.ctx.paths)[req.params.name];
      if (!fp) throw new ApiError(404, `Image alias "${req.params.name.slice(0, 70)}" not found`);
      const a = aliasShape(req.params.name, fp);
      return sync(a, { etag: etagOf({ description: a.description, target: a.target }) });
    },
  },
  {
    method: 'POST',
    path: '/1.0/images/aliases/{name}',
    async handler(req) {
      requireUnrestricted(req);
      const to = reqString(await body(req), 'name');
      const { renameAlias } = await manage();
      await asClientError(() => renameAlias(req.ctx.paths, req.params.name, to));
      req.events.lifecycle('image-alias-renamed', aliasUrl(to), { old_name: req.params.name });
      return created(aliasUrl(to));
    },
  },
  {
    method: 'DELETE',
    path: '/1.0/images/aliases/{name}',
    async handler(req) {
      requireUnrestricted(req);
      const { deleteAlias } = await manage();
      await asClientError(() => deleteAlias(req.ctx.paths, req.params.name));
      req.events.lifecycle('image-alias-deleted', aliasUrl(req.params.name));
      return sync({});
    },
  },
  {
    method: 'GET',
    path: '/1.0/images/{fingerprint}',
    async handler(req) {
      const i = imageShape(await imageByFingerprint(req));
      return sync(i, { etag: etagOf(imageWritable(i)) });
    },
  },
  { method: 'GET', path: '/1.0/images/{fingerprint}/export', handler: exportRoute },
  {
    method: 'DELETE',
    path: '/1.0/images/{fingerprint}',
    async handler(req) {
      requireUnrestricted(req);
      const img = await imageByFingerprint(req);
      const { descendantsOf, label } = await manage();
      // Refused at once, as the CLI refuses: an image other images or containers derive from stays.
      const d = descendantsOf(req.ctx.paths, img.fingerprint);
      if (d.images.length || d.containers.length) {
        const users = [...d.images.map(label), ...d.containers.map((c) => `container ${c.name}`)];
        throw new ApiError(
          409,
          `Cannot delete image ${label(img)}: ${users.slice(0, 5).join(', ')} ${users.length > 1 ? 'use' : 'uses'} it (delete those first)`,
        );
      }
      const op = req.operations.start({
        class: 'task',
        description: 'Deleting image',
        resources: { images: [url(img.fingerprint)] },
        async run() {
          await asClientError(() => deleteImage(req, img.fingerprint));
          req.events.lifecycle('image-deleted', url(img.fingerprint));
        },
      });
      return { type: 'async', operation: op };
    },
  },
];

export const extensions: string[] = [];
