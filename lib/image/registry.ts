import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TslxcError, errorText } from '../errors.js';
import { imagesDir, type Paths } from '../state/paths.js';
import { addAliases, exportImage, importImage, sha256Files } from './lxd.js';
import { getImage, readAliases, requireImage, type Image } from './store.js';
import type { Progress } from './progress.js';

/**
 * A registry for image trees: a content-addressed HTTP store. Each node is a unified tarball
 * (blobs/<sha256>) plus a record (nodes/<fingerprint>.json: parent, blob, size, aliases). A push
 * or a pull walks the node's ancestry and moves only the nodes the other side lacks, root first,
 * so every node arrives after its parent.
 *   GET  /v1/nodes                 all records
 *   GET  /v1/blobs/<sha256>        a node's tarball
 *   PUT  /v1/nodes/<fingerprint>   a tarball; headers x-tslxc-sha256, x-tslxc-parent, x-tslxc-aliases
 */
export interface NodeRecord {
  fingerprint: string;
  parent: string | null;
  blob: string;
  size: number;
  aliases: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

export function serveRegistry(dir: string, host: string, port: number): Promise<http.Server> {
  for (const d of ['blobs', 'nodes', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o700 });
  const records = (): NodeRecord[] =>
    fs
      .readdirSync(path.join(dir, 'nodes'))
      .filter((f) => /^[0-9a-f]{64}\.json$/.test(f))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir, 'nodes', f), 'utf8')) as NodeRecord);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x').pathname;
    const fail = (code: number, msg: string) => res.writeHead(code, { 'content-type': 'text/plain' }).end(`${msg}\n`);
    if (req.method === 'GET' && url === '/v1/nodes') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(records()));
      return;
    }
    let m = /^\/v1\/blobs\/([0-9a-f]{64})$/.exec(url);
    if (req.method === 'GET' && m) {
      const f = path.join(dir, 'blobs', m[1]);
      if (!fs.existsSync(f)) return fail(404, 'no such blob');
      res.writeHead(200, { 'content-length': fs.statSync(f).size });
      fs.createReadStream(f).pipe(res);
      return;
    }
    m = /^\/v1\/nodes\/([0-9a-f]{64})$/.exec(url);
    if (req.method === 'PUT' && m) {
      const fp = m[1];
      const sha = String(req.headers['x-tslxc-sha256'] ?? '');
      const parent = String(req.headers['x-tslxc-parent'] ?? '');
      if (!HEX64.test(sha) || (parent && !HEX64.test(parent))) return fail(400, 'bad x-tslxc-sha256 or x-tslxc-parent');
      if (parent && !fs.existsSync(path.join(dir, 'nodes', `${parent}.json`)))
        return fail(409, `parent ${parent.slice(0, 12)} is not in the registry; push it first`);
      const aliases = String(req.headers['x-tslxc-aliases'] ?? '')
        .split(',')
        .filter((a) => /^[a-z0-9][a-z0-9._/-]{0,127}$/i.test(a));
      const tmp = path.join(dir, 'tmp', `${fp}-${process.pid}-${Date.now()}`);
      const h = crypto.createHash('sha256');
      const out = fs.createWriteStream(tmp, { mode: 0o600 });
      let size = 0;
      req.on('data', (d: Buffer) => {
        h.update(d);
        size += d.length;
      });
      req.pipe(out);
      out.on('finish', () => {
        if (h.digest('hex') !== sha) {
          fs.rmSync(tmp, { force: true });
          return fail(422, 'the body does not match x-tslxc-sha256');
        }
        fs.renameSync(tmp, path.join(dir, 'blobs', sha));
        const rec: NodeRecord = { fingerprint: fp, parent: parent || null, blob: sha, size, aliases };
        fs.writeFileSync(path.join(dir, 'nodes', `.${fp}.tmp`), JSON.stringify(rec));
        fs.renameSync(path.join(dir, 'nodes', `.${fp}.tmp`), path.join(dir, 'nodes', `${fp}.json`));
        res.writeHead(201).end();
      });
      req.on('error', () => fs.rmSync(tmp, { force: true }));
      return;
    }
    fail(404, 'not found');
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function baseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TslxcError(`Invalid registry URL "${url.slice(0, 100)}"`, 'give http://HOST:PORT');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TslxcError(`Invalid registry URL "${url.slice(0, 100)}"`, 'give http://HOST:PORT');
  return url.replace(/\/+$/, '');
}

async function remoteNodes(url: string): Promise<NodeRecord[]> {
  let res: Response;
  try {
    res = await fetch(`${url}/v1/nodes`, { signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new TslxcError(`Cannot reach the registry ${url}`, errorText((err as Error).cause ?? err));
  }
  if (!res.ok) throw new TslxcError(`Cannot read the registry ${url}`, `HTTP ${res.status}`);
  return (await res.json()) as NodeRecord[];
}

export interface Transfer {
  nodes: string[];
  skipped: number;
  bytes: number;
}

/** The image and its ancestors in the local store, root first. */
function ancestry(p: Paths, img: Image): Image[] {
  const chain: Image[] = [img];
  const seen = new Set([img.fingerprint]);
  for (let cur = img; cur.metadata.tslxc?.parent;) {
    const parent = getImage(p, cur.metadata.tslxc.parent);
    if (!parent || seen.has(parent.fingerprint)) break;
    seen.add(parent.fingerprint);
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

export async function pushImage(p: Paths, ref: string, registry: string, progress: Progress = () => {}): Promise<Transfer> {
  const url = baseUrl(registry);
  const chain = ancestry(p, requireImage(p, ref));
  const have = new Set((await remoteNodes(url)).map((n) => n.fingerprint));
  const out: Transfer = { nodes: [], skipped: 0, bytes: 0 };
  const stage = fs.mkdtempSync(path.join(imagesDir(p), '.push-'));
  try {
    for (const [i, img] of chain.entries()) {
      if (have.has(img.fingerprint)) {
        out.skipped++;
        continue;
      }
      progress('upload', `packing ${img.fingerprint.slice(0, 12)}`);
      const file = path.join(stage, `${img.fingerprint}.tar.gz`);
      // The tarball as imported when it was, so a pulled node is the same bytes as an exported one;
      // a layered node as its layer only, so a child costs what it changed.
      await exportImage(p, img.fingerprint, file, { layer: true });
      const sha = await sha256Files([file]);
      const size = fs.statSync(file).size;
      progress('upload', `sending ${img.fingerprint.slice(0, 12)} (${size} bytes)`);
      const parent = i > 0 ? chain[i - 1].fingerprint : '';
      const res = await fetch(`${url}/v1/nodes/${img.fingerprint}`, {
        method: 'PUT',
        body: fs.readFileSync(file),
        headers: { 'x-tslxc-sha256': sha, 'x-tslxc-parent': img.metadata.tslxc?.parent ? parent : '', 'x-tslxc-aliases': img.aliases.join(',') },
      }).catch((err) => {
        throw new TslxcError(`Cannot push ${img.fingerprint.slice(0, 12)}`, errorText((err as Error).cause ?? err));
      });
      if (!res.ok) throw new TslxcError(`The registry refused ${img.fingerprint.slice(0, 12)}`, `HTTP ${res.status}: ${(await res.text()).trim()}`);
      fs.rmSync(file, { force: true });
      out.nodes.push(img.fingerprint);
      out.bytes += size;
    }
    return out;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

export async function pullImage(
  p: Paths,
  registry: string,
  ref: string,
  aliases: string[] = [],
  progress: Progress = () => {},
): Promise<Transfer & { image: Image }> {
  const url = baseUrl(registry);
  const nodes = await remoteNodes(url);
  const byFp = new Map(nodes.map((n) => [n.fingerprint, n]));
  let target = nodes.filter((n) => n.aliases.includes(ref));
  if (!target.length && /^[0-9a-f]{1,64}$/.test(ref)) target = nodes.filter((n) => n.fingerprint.startsWith(ref));
  if (target.length !== 1) throw new TslxcError(`Image "${ref}" ${target.length ? 'is ambiguous' : 'not found'} in the registry ${url}`);
  const chain: NodeRecord[] = [target[0]];
  while (chain[0].parent && byFp.has(chain[0].parent) && chain.length < 64) chain.unshift(byFp.get(chain[0].parent)!);
  const out: Transfer = { nodes: [], skipped: 0, bytes: 0 };
  fs.mkdirSync(imagesDir(p), { recursive: true, mode: 0o700 });
  const stage = fs.mkdtempSync(path.join(imagesDir(p), '.pull-'));
  try {
    for (const n of chain) {
      if (getImage(p, n.fingerprint)) {
        out.skipped++;
        continue;
      }
      progress('download', `fetching ${n.fingerprint.slice(0, 12)} (${n.size} bytes)`);
      const res = await fetch(`${url}/v1/blobs/${n.blob}`).catch((err) => {
        throw new TslxcError(`Cannot pull ${n.fingerprint.slice(0, 12)}`, errorText((err as Error).cause ?? err));
      });
      if (!res.ok) throw new TslxcError(`Cannot pull ${n.fingerprint.slice(0, 12)}`, `HTTP ${res.status}`);
      const file = path.join(stage, `${n.blob}.tar.gz`);
      fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      if ((await sha256Files([file])) !== n.blob)
        throw new TslxcError(`Pull of ${n.fingerprint.slice(0, 12)} failed verification`, 'the blob does not match its sha256');
      out.bytes += fs.statSync(file).size;
      // The registry's names come along where the local store does not use them already.
      const taken = readAliases(p);
      const names = [...n.aliases.filter((a) => !taken[a]), ...(n === chain[chain.length - 1] ? aliases : [])];
      await importImage(p, file, undefined, names, { fingerprint: n.fingerprint });
      fs.rmSync(file, { force: true });
      out.nodes.push(n.fingerprint);
    }
    if (aliases.length && !out.nodes.includes(target[0].fingerprint)) await addAliases(p, target[0].fingerprint, aliases);
    return { ...out, image: getImage(p, target[0].fingerprint)! };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
