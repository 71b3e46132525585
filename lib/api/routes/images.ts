import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Image } from '../../image/store.js';
import type { Context } from '../../state/context.js';
import { ApiError, sync, type ApiRequest, type Route } from '../types.js';
import { aliasShape, aliasWritable, apiFingerprint, builtExport, imageShape, imageWritable, originalFile } from '../shapes/image.js';
import {
  asClientError,
  body,
  checkIfMatch,
  created,
  deleteRoute,
  enc,
  etagOf,
  optString,
  recursion,
  renameRoute,
  reqString,
  requireUnrestricted,
  stringMap,
} from './rest.js';

/**
 * /1.0/images and /1.0/images/aliases over the store `tslxc image` manages (its images lock, its
 * import with every check of the archive, its in-use refusals). An upload is streamed to a temp
 * dir inside the store, bounded, then imported as `tslxc image import FILE` does.
 */

const store = () => import('../../image/store.js');
const manage = () => import('../../image/manage.js');
const url = (fp: string) => `/1.0/images/${fp}`;
const aliasUrl = (name: string) => `/1.0/images/aliases/${enc(name)}`;
const alias = { path: '/1.0/images/aliases/{name}', kind: 'image-alias', url: aliasUrl };

/** The most an upload may be, unless TSLXC_API_MAX_UPLOAD (bytes) says otherwise. */
const DEFAULT_MAX_UPLOAD = 16 * 1024 ** 3;
/** Room an upload must leave on the state dir's filesystem (the import copies it once more). */
const FREE_RESERVE = 512 * 1024 ** 2;

/**
 * By full fingerprint or a unique prefix, as LXD's /1.0/images/{fingerprint}; never by alias. A
 * built image is found by its tree digest or by its kept export's sha256 (the one shown).
 */
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
  // The request is left open past the limit (destroyOnReturn false), so that the server can read
  // the rest before it closes and the client sees the 413 (lib/api/server.ts closeAfterBody).
  await pipeline(
    req.raw.iterator({ destroyOnReturn: false }),
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

/**
 * A split image as `lxc image import META ROOTFS` posts it: multipart/form-data with a "metadata"
 * part and a "rootfs" part (a tarball or squashfs), each streamed to a file in DIR named by its
 * format. A virtual machine's "rootfs.img" is refused: tslxc runs containers.
 */
async function receiveSplit(req: ApiRequest, dir: string): Promise<[string, string]> {
  const { boundaryOf, receiveParts } = await import('./multipart.js');
  const st = fs.statfsSync(dir);
  const limit = maxUpload(st.bavail * st.bsize);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new ApiError(413, `The image is ${declared} bytes; at most ${limit} can be uploaded here`);
  const parts = await receiveParts(
    req.raw.iterator({ destroyOnReturn: false }),
    boundaryOf(String(req.headers['content-type'])),
    dir,
    ['metadata', 'rootfs', 'rootfs.img'],
    limit,
  );
  if (parts.some((p) => p.name === 'rootfs.img')) throw new ApiError(400, 'Virtual machine images cannot be imported: tslxc runs containers');
  const meta = parts.find((p) => p.name === 'metadata');
  const rootfs = parts.find((p) => p.name === 'rootfs');
  if (!meta || !rootfs) throw new ApiError(400, 'A split image upload needs a "metadata" part and a "rootfs" part');
  const { codecOf } = await import('../../image/archive.js');
  const named = (p: typeof meta, base: string) => {
    const squashfs = p.head.toString('latin1', 0, 4) === 'hsqs';
    const ext = squashfs ? '.squashfs' : { gzip: '.tar.gz', zstd: '.tar.zst', xz: '.tar.xz', bzip2: '.tar.bz2', none: '.tar' }[codecOf(p.head)];
    const f = path.join(dir, `${base}${ext}`);
    fs.renameSync(p.file, f);
    return f;
  };
  return [named(meta, 'upload'), named(rootfs, 'upload-rootfs')];
}

/** What the client sets with X-LXD-public and X-LXD-properties (`lxc image import --public`, `property=value`). */
function uploadSettings(req: ApiRequest): { public?: boolean; properties: Record<string, string> } | undefined {
  const pub = req.headers['x-lxd-public'];
  const props = req.headers['x-lxd-properties'];
  if (pub === undefined && props === undefined) return undefined;
  const properties: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(String(props ?? ''))) properties[k.slice(0, 256)] = v.slice(0, 4096);
  return { public: pub === undefined ? undefined : String(pub) === 'true', properties };
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
  const expected = req.headers['x-lxd-fingerprint'] ? String(req.headers['x-lxd-fingerprint']) : undefined;
  const settings = uploadSettings(req);
  const dir = await storeTemp(req, 'upload');
  let file: string;
  let rootfsFile: string | undefined;
  try {
    if (ctype === 'multipart/form-data') [file, rootfsFile] = await receiveSplit(req, dir);
    else if (ctype.startsWith('multipart/'))
      throw new ApiError(400, `Cannot upload an image as ${ctype.slice(0, 40)}: post a tarball, or multipart/form-data with metadata and rootfs`);
    else file = await receiveUpload(req, dir);
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
        const r = await asClientError(() => importImage(paths, file, rootfsFile, []));
        const fp = r.image.fingerprint;
        if (expected && expected !== fp) {
          // Imported just now: taken out again, as nothing of a refused upload may stay.
          if (!r.existed) await deleteImage(req, fp);
          throw new ApiError(400, `The image's fingerprint is ${fp}, not the ${expected.slice(0, 64)} the client gave`);
        }
        if (!r.existed && settings) {
          const { updateImage } = await manage();
          await updateImage(paths, fp, (c) => ({
            properties: { ...c.properties, ...settings.properties },
            settings: { ...c.settings, public: settings.public ?? c.settings.public },
          }));
        }
        if (!r.existed) req.events.lifecycle('image-created', url(fp));
        const size = [file, rootfsFile].reduce((sum, f) => sum + (f && fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
        return { fingerprint: fp, size: String(originalFile(r.image) ? fs.statSync(originalFile(r.image)!).size : size) };
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

/** The exports this server is making, by image: a second request waits for the first one's. */
const exporting = new Map<string, Promise<unknown>>();

/**
 * A built image's export, needed when the API shows the image alone (as `lxc image export`, `lxc
 * image show` and `lxc launch` ask for it), so that the fingerprint shown is the sha256 the client
 * will check the download against. Usually made ahead of time (lib/image/kept-export.ts): one
 * still being made in the background is waited for, and only one missing is made here. A list
 * shows the tree digest until then: both find the image.
 */
async function withKeptExport(req: ApiRequest, img: Image): Promise<Image> {
  if (img.metadata.tslxc?.original || builtExport(img)) return img;
  const { awaitKeeper } = await import('../../image/kept-export.js');
  await awaitKeeper(req.ctx.paths, img.fingerprint);
  if (builtExport(img)) return img;
  let making = exporting.get(img.fingerprint);
  if (!making) {
    const { keepExport } = await import('../../image/lxd.js');
    making = keepExport(req.ctx.paths, img).finally(() => exporting.delete(img.fingerprint));
    exporting.set(img.fingerprint, making);
  }
  await asClientError(() => making);
  return img;
}

/**
 * At the server's start: the built images without an export yet (stored before exports were made
 * ahead, or whose background export was stopped) get one in the background.
 */
export async function keepMissingExports(ctx: Context): Promise<void> {
  const { listImages } = await store();
  const missing = listImages(ctx.paths).filter((i) => !i.metadata.tslxc?.original && !builtExport(i));
  if (!missing.length) return;
  const { keepExportLater } = await import('../../image/kept-export.js');
  keepExportLater(
    ctx.paths,
    missing.map((i) => i.fingerprint),
  );
}

/** An alias's target as the API shows it: the image's API fingerprint (a dangling one as it is). */
const shownTarget = (img: Image | undefined, fp: string): string => (img ? apiFingerprint(img) : fp);

/**
 * The image as LXD's unified tarball: an imported one's kept file, a built one's kept export, so
 * that the client's check of its sha256 against the fingerprint holds.
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
  const kept = img.metadata.tslxc?.original;
  if (kept?.kind === 'split') return splitExport(img.fingerprint, kept.files.map((f) => path.join(img.dir, 'original', f)) as [string, string]);
  await withKeptExport(req, img);
  const built = builtExport(img)!;
  return { type: 'raw' as const, headers: headers(`${built.sha256}.tar.gz`, fs.statSync(built.file).size), body: fs.createReadStream(built.file) };
}

/**
 * An imported split image's kept files as LXD sends them: multipart/form-data with a "metadata"
 * and a "rootfs" part, whose sha256 together is the fingerprint the client checks.
 */
function splitExport(fp: string, [meta, rootfs]: [string, string]) {
  const boundary = `tslxc-${randomBytes(12).toString('hex')}`;
  const head = (field: string, file: string, first: boolean) =>
    Buffer.from(
      `${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${path.basename(file)}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
  const parts = [
    head('metadata', `meta-${fp}${path.basename(meta).replace(/^meta/, '')}`, true),
    head('rootfs', `${fp}${path.basename(rootfs).replace(/^rootfs/, '')}`, false),
  ];
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = parts[0].length + parts[1].length + tail.length + fs.statSync(meta).size + fs.statSync(rootfs).size;
  async function* body() {
    yield parts[0];
    yield* fs.createReadStream(meta);
    yield parts[1];
    yield* fs.createReadStream(rootfs);
    yield tail;
  }
  return {
    type: 'raw' as const,
    headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(size) },
    body: Readable.from(body()),
  };
}

export const routes: Route[] = [
  {
    method: 'GET',
    path: '/1.0/images',
    async handler(req) {
      const { listImages, aliasDescriptions } = await store();
      const images = listImages(req.ctx.paths).sort((a, b) => a.metadata.creation_date - b.metadata.creation_date);
      if (!recursion(req)) return sync(images.map((i) => url(apiFingerprint(i))));
      const d = aliasDescriptions(req.ctx.paths);
      return sync(images.map((i) => imageShape(i, d)));
    },
  },
  { method: 'POST', path: '/1.0/images', handler: upload },
  {
    method: 'GET',
    path: '/1.0/images/aliases',
    async handler(req) {
      const { readAliases, aliasDescriptions } = await store();
      const table = Object.entries(readAliases(req.ctx.paths)).sort(([a], [b]) => a.localeCompare(b));
      if (!recursion(req)) return sync(table.map(([a]) => aliasUrl(a)));
      const d = aliasDescriptions(req.ctx.paths);
      const { getImage } = await store();
      return sync(table.map(([a, fp]) => aliasShape(a, shownTarget(getImage(req.ctx.paths, fp), fp), d[a])));
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
      const { createAlias } = await manage();
      await asClientError(() => createAlias(req.ctx.paths, name, target, optString(b, 'description')));
      req.events.lifecycle('image-alias-created', aliasUrl(name), { target });
      return created(aliasUrl(name));
    },
  },
  {
    method: 'GET',
    path: '/1.0/images/aliases/{name}',
    async handler(req) {
      const { readAliases, aliasDescriptions } = await store();
      const fp = readAliases(req.ctx.paths)[req.params.name];
      if (!fp) throw new ApiError(404, `Image alias "${req.params.name.slice(0, 70)}" not found`);
      // `lxc image export ALIAS` checks the download against the target itself: a built image's
      // export is made now, so that the target is its sha256.
      const { getImage } = await store();
      const img = getImage(req.ctx.paths, fp);
      if (img) await withKeptExport(req, img);
      const a = aliasShape(req.params.name, shownTarget(img, fp), aliasDescriptions(req.ctx.paths)[req.params.name]);
      return sync(a, { etag: etagOf(aliasWritable(a)) });
    },
  },
  { method: 'PUT', path: '/1.0/images/aliases/{name}', handler: (req) => updateAliasRoute(req, false) },
  { method: 'PATCH', path: '/1.0/images/aliases/{name}', handler: (req) => updateAliasRoute(req, true) },
  renameRoute(alias, async (req, from, to) => (await manage()).renameAlias(req.ctx.paths, from, to)),
  deleteRoute(alias, async (req, name) => (await manage()).deleteAlias(req.ctx.paths, name)),
  {
    method: 'GET',
    path: '/1.0/images/{fingerprint}',
    async handler(req) {
      const { aliasDescriptions } = await store();
      const i = imageShape(await withKeptExport(req, await imageByFingerprint(req)), aliasDescriptions(req.ctx.paths));
      return sync(i, { etag: etagOf(imageWritable(i)) });
    },
  },
  { method: 'PUT', path: '/1.0/images/{fingerprint}', handler: (req) => updateImageRoute(req, false) },
  { method: 'PATCH', path: '/1.0/images/{fingerprint}', handler: (req) => updateImageRoute(req, true) },
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

/** An alias PUT sets target and description (the target required, as LXD); PATCH either. */
async function updateAliasRoute(req: ApiRequest, merge: boolean) {
  requireUnrestricted(req);
  const b = await body(req);
  const target = optString(b, 'target');
  const description = optString(b, 'description');
  if (!merge && !target) throw new ApiError(400, '"target" is required');
  if (target !== undefined && !/^[0-9a-f]{1,64}$/.test(target)) throw new ApiError(400, `"target" must be an image fingerprint, not "${target.slice(0, 70)}"`);
  const { updateAlias } = await manage();
  const { getImage } = await store();
  await asClientError(() =>
    updateAlias(req.ctx.paths, req.params.name, { target, description: merge ? description : (description ?? '') }, (current) =>
      checkIfMatch(req, etagOf(aliasWritable({ ...current, target: shownTarget(getImage(req.ctx.paths, current.target), current.target) }))),
    ),
  );
  req.events.lifecycle('image-alias-updated', aliasUrl(req.params.name), target ? { target } : {});
  return sync({});
}

function optBool(b: Record<string, unknown>, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `"${key}" must be true or false`);
  return v;
}

/**
 * An image's PUT replaces properties, public, auto_update and profiles, and sets expires_at when
 * given (a zero time keeps it); PATCH merges properties key by key and sets public and
 * auto_update when given, as LXD 5.0.2 does. tslxc keeps these; none of them acts here.
 */
async function updateImageRoute(req: ApiRequest, merge: boolean) {
  requireUnrestricted(req);
  const img = await imageByFingerprint(req);
  const b = await body(req);
  const properties = stringMap(b.properties, 'properties');
  const pub = optBool(b, 'public');
  const autoUpdate = optBool(b, 'auto_update');
  const expires = optString(b, 'expires_at');
  if (expires !== undefined && !Number.isFinite(Date.parse(expires)))
    throw new ApiError(400, `"expires_at" must be an RFC 3339 time, not "${expires.slice(0, 40)}"`);
  let profiles: string[] | undefined;
  if (!merge && b.profiles !== undefined && b.profiles !== null) {
    if (!Array.isArray(b.profiles) || b.profiles.some((x) => typeof x !== 'string')) throw new ApiError(400, '"profiles" must be a list of names');
    const { listProfiles } = await import('../../profile/store.js');
    const known = new Set(listProfiles(req.ctx.paths).map((p) => p.name));
    const missing = (b.profiles as string[]).find((n) => !known.has(n));
    if (missing !== undefined) throw new ApiError(400, `Profile "${missing.slice(0, 64)}" not found`);
    profiles = b.profiles as string[];
  }
  const { updateImage } = await manage();
  await asClientError(() =>
    updateImage(req.ctx.paths, img.fingerprint, (current) => {
      // Checked under the images lock: a change between the GET and now is refused.
      const s = current.settings;
      checkIfMatch(req, etagOf(imageWritable({ ...s, properties: current.properties })));
      const zero = expires !== undefined && Date.parse(expires) <= Date.parse('0001-01-01T00:00:00Z');
      if (merge)
        return {
          properties: { ...current.properties, ...(properties ?? {}) },
          settings: { ...s, public: pub ?? s.public, auto_update: autoUpdate ?? s.auto_update },
        };
      return {
        properties: properties ?? {},
        settings: {
          public: pub ?? false,
          auto_update: autoUpdate ?? false,
          expires_at: expires !== undefined && !zero ? expires : s.expires_at,
          profiles: profiles ?? ['default'],
        },
      };
    }),
  );
  req.events.lifecycle('image-updated', url(img.fingerprint));
  return sync({});
}

export const extensions: string[] = [];
