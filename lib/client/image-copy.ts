import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TslxcError } from '../errors.js';
import type { Paths } from '../state/paths.js';
import { operationId, type Envelope, type RemoteServer } from './connection.js';

/**
 * An image put on a server from elsewhere, relayed by this client as `lxc image copy` does when the
 * target cannot pull: exported from the source (another API server, or this host's store) and
 * posted to the target's /1.0/images as the export came (a unified tarball, or LXD's multipart of
 * a split image). An image the target has already (same fingerprint) is not sent again; one
 * that tslxc built is packed anew by the export, so its fingerprint there is the tarball's.
 */

export interface CopiedImage {
  fingerprint: string;
  /** the alias the image has on the target now (the source's name, added when the target had none) */
  alias?: string;
}

/** Whether SERVER has an image by that full fingerprint. */
async function has(server: RemoteServer, fingerprint: string): Promise<boolean> {
  const r = await server.raw('GET', `/1.0/images/${encodeURIComponent(fingerprint)}`);
  return r.status === 200;
}

/** The fingerprint an alias or a fingerprint (prefix) names on SERVER; undefined: none. */
export async function imageOn(server: RemoteServer, ref: string): Promise<string | undefined> {
  const a = await server.raw('GET', `/1.0/images/aliases/${encodeURIComponent(ref)}`);
  if (a.status === 200) return (JSON.parse(a.body.toString('utf8')) as { metadata?: { target?: string } }).metadata?.target;
  if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
  const r = await server.raw('GET', `/1.0/images/${encodeURIComponent(ref)}`);
  if (r.status !== 200) return undefined;
  return (JSON.parse(r.body.toString('utf8')) as { metadata?: { fingerprint?: string } }).metadata?.fingerprint;
}

/** POST /1.0/images with BODY; the fingerprint the server's operation gives back. */
async function upload(target: RemoteServer, body: Readable, headers: Record<string, string>): Promise<string> {
  const r = await target.raw('POST', '/1.0/images', body, { 'content-type': 'application/octet-stream', ...headers });
  let envelope: Envelope;
  try {
    envelope = JSON.parse(r.body.toString('utf8')) as Envelope;
  } catch {
    throw new TslxcError(`Remote "${target.name}" gave no API answer to the image upload`, `HTTP ${r.status}`);
  }
  if (envelope.type === 'error' || r.status >= 400) throw target.failure(r.status, envelope.error || `HTTP ${r.status}`);
  const op = await target.wait(operationId(envelope));
  const fp = (op.metadata as { fingerprint?: string } | null)?.fingerprint;
  if (!fp) throw new TslxcError(`Remote "${target.name}" did not say which image it stored`);
  return fp;
}

/** Adds ALIAS for FP on TARGET unless it names an image there already (then the new one is used by fingerprint). */
async function aliasOn(target: RemoteServer, alias: string | undefined, fp: string): Promise<string | undefined> {
  if (!alias || /^[0-9a-f]{12,64}$/.test(alias)) return undefined;
  const have = await imageOn(target, alias);
  if (have === fp) return alias;
  if (have) return undefined;
  await target.call('POST', '/1.0/images/aliases', { name: alias, target: fp, description: '' });
  return alias;
}

/** Image REF of API server SOURCE onto TARGET. */
export async function copyFromServer(source: RemoteServer, ref: string, target: RemoteServer): Promise<CopiedImage> {
  const fp = await imageOn(source, ref);
  if (!fp)
    throw new TslxcError(`Image "${ref}" not found on remote "${source.name}"`, undefined, 'give an alias or fingerprint of its images', { kind: 'not-found' });
  const alias = fp.startsWith(ref) ? undefined : ref;
  if (await has(target, fp)) return { fingerprint: fp, alias: await aliasOn(target, alias, fp) };
  const res = await source.stream('GET', `/1.0/images/${encodeURIComponent(fp)}/export`);
  if ((res.statusCode ?? 0) >= 400) {
    res.resume();
    throw source.failure(res.statusCode ?? 0, `cannot export image ${fp.slice(0, 12)}`);
  }
  // No X-LXD-fingerprint: an image tslxc built is exported packed anew, and the target names it
  // by that tarball's sha256 as LXD does, not by the source's fingerprint.
  const headers: Record<string, string> = {};
  // A split image comes as multipart/form-data, which the target takes as it is.
  if (res.headers['content-type']) headers['content-type'] = String(res.headers['content-type']);
  if (res.headers['content-length']) headers['content-length'] = String(res.headers['content-length']);
  const got = await upload(target, res, headers);
  return { fingerprint: got, alias: await aliasOn(target, alias, got) };
}

/** Image REF of this host's store onto TARGET: exported as one tarball into a temp dir, then posted. */
export async function copyFromLocal(paths: Paths, ref: string, target: RemoteServer): Promise<CopiedImage> {
  const { requireImage } = await import('../image/store.js');
  const img = requireImage(paths, ref);
  const alias = img.fingerprint.startsWith(ref) ? undefined : ref;
  if (await has(target, img.fingerprint)) return { fingerprint: img.fingerprint, alias: await aliasOn(target, alias, img.fingerprint) };
  const { exportImage } = await import('../image/lxd.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-image-copy-'));
  try {
    const file = path.join(dir, 'image.tar.gz');
    const { files } = await exportImage(paths, img.fingerprint, file, { split: false });
    const size = fs.statSync(files[0]!).size;
    const fp = await upload(target, fs.createReadStream(files[0]!), { 'content-length': String(size) });
    return { fingerprint: fp, alias: await aliasOn(target, alias, fp) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
