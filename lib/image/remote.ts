import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError, errorText } from '../errors.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { withLock } from '../util/lock.js';
import { imagesDir, locksDir, type Paths } from '../state/paths.js';
import type { Progress } from './progress.js';
import { getImage, type Image } from './store.js';
import { addAliases, importImage } from './lxd.js';
import { deleteImage } from './manage.js';

/**
 * Remote image servers speaking simplestreams, the protocol of LXD's and Incus' image servers:
 * URL/streams/v1/index.json names the products file (images.json); a product (os:release:arch:
 * variant) has aliases and dated versions; a version's items are the metadata tarball
 * (lxd.tar.xz / incus.tar.xz) and a rootfs (rootfs.squashfs or root.tar.xz), each with its
 * sha256, and the metadata item carries the combined hash that is the image's fingerprint.
 * Remotes are kept in TSLXC_DIR/remotes.yaml; `images` (images.linuxcontainers.org) is there by
 * default.
 */
export interface Remote {
  url: string;
  protocol: 'simplestreams';
}

const DEFAULTS: Record<string, Remote> = { images: { url: 'https://images.linuxcontainers.org', protocol: 'simplestreams' } };
const remotesFile = (p: Paths) => path.join(p.stateDir, 'remotes.yaml');
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function listRemotes(p: Paths): Record<string, Remote> {
  return readYamlIfExists<Record<string, Remote>>(remotesFile(p)) ?? { ...DEFAULTS };
}

function saveRemotes(p: Paths, r: Record<string, Remote>): void {
  fs.mkdirSync(p.stateDir, { recursive: true, mode: 0o711 });
  writeYamlAtomic(remotesFile(p), r, 0o600);
}

function validateRemoteName(name: string): void {
  if (!NAME.test(name) || name === 'local')
    throw new TslxcError(`Invalid remote name "${name.slice(0, 70)}"`, 'use lowercase letters, digits and "-" ("local" is the store itself)');
}

function validateUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TslxcError(`Invalid remote URL "${url.slice(0, 100)}"`, 'give an http:// or https:// URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TslxcError(`Invalid remote URL "${url.slice(0, 100)}"`, 'give an http:// or https:// URL');
  return url.replace(/\/+$/, '');
}

const withRemotesLock = <T>(p: Paths, fn: () => Promise<T>) => withLock(locksDir(p), 'remotes', fn, { purpose: 'the remotes' });

export async function addRemote(p: Paths, name: string, url: string): Promise<void> {
  validateRemoteName(name);
  const u = validateUrl(url);
  await withRemotesLock(p, async () => {
    const r = listRemotes(p);
    if (r[name]) throw new TslxcError(`Remote "${name}" already exists`, r[name].url, 'remove it first');
    r[name] = { url: u, protocol: 'simplestreams' };
    saveRemotes(p, r);
  });
}

export async function removeRemote(p: Paths, name: string): Promise<void> {
  await withRemotesLock(p, async () => {
    const r = listRemotes(p);
    if (!r[name]) throw new TslxcError(`Remote "${name}" not found`, undefined, 'see "tslxc remote list"');
    delete r[name];
    saveRemotes(p, r);
  });
}

export async function renameRemote(p: Paths, from: string, to: string): Promise<void> {
  validateRemoteName(to);
  await withRemotesLock(p, async () => {
    const r = listRemotes(p);
    if (!r[from]) throw new TslxcError(`Remote "${from}" not found`, undefined, 'see "tslxc remote list"');
    if (r[to]) throw new TslxcError(`Remote "${to}" already exists`);
    r[to] = r[from];
    delete r[from];
    saveRemotes(p, r);
  });
}

/** "REMOTE:ALIAS" → its parts, when REMOTE is a known remote. */
export function parseRemoteRef(p: Paths, ref: string): { remote: string; alias: string } | undefined {
  const i = ref.indexOf(':');
  if (i <= 0) return undefined;
  const remote = ref.slice(0, i);
  if (!NAME.test(remote)) return undefined;
  if (!listRemotes(p)[remote]) throw new TslxcError(`Remote "${remote}" not found`, undefined, 'see "tslxc remote list"');
  return { remote, alias: ref.slice(i + 1) };
}

interface Item {
  ftype: string;
  path: string;
  sha256: string;
  size?: number;
  combined_sha256?: string;
  combined_squashfs_sha256?: string;
  combined_rootxz_sha256?: string;
}
interface Product {
  aliases?: string;
  arch?: string;
  os?: string;
  release?: string;
  variant?: string;
  versions?: Record<string, { items?: Record<string, Item> }>;
}

const ARCH: Record<string, string[]> = { x64: ['amd64', 'x86_64'], arm64: ['arm64', 'aarch64'] };

async function getJson(url: string, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new TslxcError(`Cannot reach ${what}`, `${url}: ${errorText((err as Error).cause ?? err)}`, 'check the URL and the network');
  }
  if (!res.ok) throw new TslxcError(`Cannot read ${what}`, `${url}: HTTP ${res.status}`);
  try {
    return await res.json();
  } catch {
    throw new TslxcError(`Cannot read ${what}`, `${url} is not JSON`);
  }
}

export interface RemoteImage {
  fingerprint: string;
  product: string;
  version: string;
  aliases: string[];
  description: string;
  files: Array<{ url: string; sha256: string; size?: number; name: string }>;
}

/** Finds ALIAS on a remote: the newest version of the product for this host's architecture. */
export async function findRemoteImage(p: Paths, remoteName: string, alias: string): Promise<RemoteImage> {
  const remote = listRemotes(p)[remoteName];
  if (!remote) throw new TslxcError(`Remote "${remoteName}" not found`, undefined, 'see "tslxc remote list"');
  const what = `remote "${remoteName}"`;
  const index = (await getJson(`${remote.url}/streams/v1/index.json`, what)) as { index?: Record<string, { datatype?: string; path?: string }> };
  const entry = Object.values(index?.index ?? {}).find((e) => e?.datatype === 'image-downloads' && typeof e.path === 'string');
  if (!entry) throw new TslxcError(`Cannot read ${what}`, 'its index.json names no image-downloads stream');
  const rel = entry.path!;
  if (rel.startsWith('/') || rel.split('/').includes('..')) throw new TslxcError(`Cannot read ${what}`, `bad products path "${rel.slice(0, 80)}"`);
  const doc = (await getJson(`${remote.url}/${rel}`, what)) as { products?: Record<string, Product> };
  const arches = ARCH[process.arch] ?? [process.arch];
  const matches = Object.entries(doc?.products ?? {}).filter(([key, prod]) => {
    if (prod.arch && !arches.includes(prod.arch)) return false;
    const names = (prod.aliases ?? '').split(',').map((s) => s.trim());
    return names.includes(alias) || key === alias;
  });
  if (!matches.length)
    throw new TslxcError(
      `Image "${alias}" not found on ${what}`,
      undefined,
      `the remote has ${Object.keys(doc?.products ?? {}).length} products; check the alias`,
    );
  const [key, prod] = matches[0];
  const versions = Object.keys(prod.versions ?? {}).sort();
  for (const v of versions.reverse()) {
    const items = Object.values(prod.versions![v].items ?? {});
    const meta = items.find((i) => i.ftype === 'lxd.tar.xz' || i.ftype === 'incus.tar.xz');
    if (!meta) continue;
    const root = items.find((i) => i.ftype === 'squashfs') ?? items.find((i) => i.ftype === 'root.tar.xz');
    if (!root) continue;
    const fp = root.ftype === 'squashfs' ? (meta.combined_squashfs_sha256 ?? meta.combined_sha256) : (meta.combined_rootxz_sha256 ?? meta.combined_sha256);
    if (!fp || !/^[0-9a-f]{64}$/.test(fp)) continue;
    for (const i of [meta, root]) {
      if (!/^[0-9a-f]{64}$/.test(i.sha256 ?? '') || typeof i.path !== 'string' || i.path.startsWith('/') || i.path.split('/').includes('..')) {
        throw new TslxcError(`Cannot read ${what}`, `item ${String(i.path).slice(0, 60)} has a bad path or sha256`);
      }
    }
    return {
      fingerprint: fp,
      product: key,
      version: v,
      aliases: (prod.aliases ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      description: [prod.os, prod.release, prod.arch, prod.variant].filter(Boolean).join(' '),
      files: [meta, root].map((i, n) => ({
        url: `${remote.url}/${i.path}`,
        sha256: i.sha256,
        size: i.size,
        name: n === 0 ? 'meta.tar.xz' : root.ftype === 'squashfs' ? 'rootfs.squashfs' : 'root.tar.xz',
      })),
    };
  }
  throw new TslxcError(`Image "${alias}" on ${what} has no usable version`, 'no version has a metadata tarball and a rootfs for containers');
}

/**
 * Downloads a file into `file`, resuming a partial download left by an interrupted run (HTTP
 * Range) and starting over when the server does not resume. The sha256 is checked on the whole
 * file; a mismatch removes it.
 */
async function download(url: string, file: string, sha256: string, progress: Progress, label: string): Promise<void> {
  const part = `${file}.part`;
  if (fs.existsSync(file) && (await fileSha(file)) === sha256) return;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  let res: Response;
  try {
    res = await fetch(url, { headers: have ? { range: `bytes=${have}-` } : {}, signal: AbortSignal.timeout(10 * 60_000) });
  } catch (err) {
    throw new TslxcError(`Cannot download ${label}`, `${url}: ${errorText((err as Error).cause ?? err)}`, 'run the command again to resume');
  }
  if (res.status === 416) {
    have = 0;
    fs.rmSync(part, { force: true });
    return download(url, file, sha256, progress, label);
  }
  if (!res.ok || !res.body) throw new TslxcError(`Cannot download ${label}`, `${url}: HTTP ${res.status}`);
  const resumed = res.status === 206 && have > 0;
  if (!resumed) have = 0;
  const total = Number(res.headers.get('content-length') ?? 0) + have;
  const fd = fs.openSync(part, resumed ? 'a' : 'w', 0o600);
  let got = have;
  let shown = -1;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      fs.writeSync(fd, value);
      got += value.length;
      const pct = total ? Math.floor((got / total) * 100) : -1;
      if (pct !== shown && pct % 10 === 0) {
        shown = pct;
        progress('download', `${label}: ${pct >= 0 ? `${pct}%` : `${got} bytes`}${resumed ? ' (resumed)' : ''}`);
      }
    }
  } catch (err) {
    throw new TslxcError(`Download of ${label} interrupted`, `${errorText((err as Error).cause ?? err)} after ${got} bytes`, 'run the command again to resume');
  } finally {
    fs.closeSync(fd);
  }
  const actual = await fileSha(part);
  if (actual !== sha256) {
    fs.rmSync(part, { force: true });
    throw new TslxcError(
      `Download of ${label} failed verification`,
      `sha256 ${actual.slice(0, 16)}… does not match the server's ${sha256.slice(0, 16)}…`,
      'the file was removed; try again, or check the server',
    );
  }
  fs.renameSync(part, file);
}

async function fileSha(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  await new Promise<void>((resolve, reject) =>
    fs
      .createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', resolve)
      .on('error', reject),
  );
  return h.digest('hex');
}

/**
 * `launch REMOTE:ALIAS` and `image copy REMOTE:ALIAS local:`: the image from the store when it is
 * there already (same fingerprint), else downloaded (verified, resumable) and imported. The
 * result must have the fingerprint the server announced.
 */
export async function pullRemoteImage(p: Paths, ref: string, opts: { aliases?: string[]; progress?: Progress } = {}): Promise<Image> {
  const parsed = parseRemoteRef(p, ref);
  if (!parsed) throw new TslxcError(`"${ref}" is not REMOTE:ALIAS`);
  const progress = opts.progress ?? (() => {});
  const found = await findRemoteImage(p, parsed.remote, parsed.alias);
  const aliases = opts.aliases ?? [];
  const existing = getImage(p, found.fingerprint);
  if (existing) {
    if (aliases.length) await addAliases(p, found.fingerprint, aliases);
    return getImage(p, found.fingerprint)!;
  }
  const dl = path.join(imagesDir(p), '.downloads', found.fingerprint);
  fs.mkdirSync(dl, { recursive: true, mode: 0o700 });
  return withLock(
    locksDir(p),
    `download-${found.fingerprint.slice(0, 16)}`,
    async () => {
      const files: string[] = [];
      for (const f of found.files) {
        const file = path.join(dl, f.name);
        await download(f.url, file, f.sha256, progress, `${parsed.remote}:${parsed.alias} ${f.name}`);
        files.push(file);
      }
      progress('unpack', `importing ${parsed.remote}:${parsed.alias}`);
      const r = await importImage(p, files[0], files[1], aliases);
      if (r.image.fingerprint !== found.fingerprint) {
        // Not the announced image: drop what this pull stored. A new image has no pool copies yet.
        await deleteImage(p, r.image.fingerprint, { forgetInPools: async () => {} }).catch(() => {});
        throw new TslxcError(
          `Image ${parsed.remote}:${parsed.alias} failed verification`,
          `its files hash to ${r.image.fingerprint.slice(0, 12)}, the server announced ${found.fingerprint.slice(0, 12)}`,
        );
      }
      fs.rmSync(dl, { recursive: true, force: true });
      return r.image;
    },
    { purpose: `the download of ${ref}`, timeoutMs: 60 * 60_000 },
  );
}
