import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';

/**
 * A simplestreams server on 127.0.0.1 (started and closed by this file) serving a busybox image
 * in LXD's split format: copy, launch REMOTE:ALIAS, sha256 checks, resume after an interruption.
 */
if (requireRoot(test)) {
  const env = new TestEnv('remote');
  const src = new TestEnv('remote-src');
  const www = path.join(env.root, 'www');
  const sha = (...files: string[]) => {
    const h = crypto.createHash('sha256');
    for (const f of files) h.update(fs.readFileSync(f));
    return h.digest('hex');
  };
  const requests: Array<{ url: string; range?: string }> = [];
  /** paths whose next response is cut after this many bytes */
  const cut = new Map<string, number>();
  let server: http.Server;
  let base = '';
  let fingerprint = '';

  const product = (name: string, alias: string, meta: string, root: string, rootSha = sha(root)) => ({
    aliases: alias,
    arch: 'amd64',
    os: 'busybox',
    release: 'test',
    variant: 'default',
    versions: {
      '20260101_00:00': {
        items: {
          'lxd.tar.xz': {
            ftype: 'lxd.tar.xz',
            path: `images/${name}/${path.basename(meta)}`,
            sha256: sha(meta),
            size: fs.statSync(meta).size,
            combined_squashfs_sha256: sha(meta, root),
          },
          'rootfs.squashfs': { ftype: 'squashfs', path: `images/${name}/${path.basename(root)}`, sha256: rootSha, size: fs.statSync(root).size },
        },
      },
    },
  });

  test.before(async () => {
    const b = src.cli(['image', 'build', 'busybox']);
    if (b.code !== 0) throw new Error(b.stderr);
    const dir = path.join(www, 'images', 'bb');
    fs.mkdirSync(dir, { recursive: true });
    const e = src.cli(['image', 'export', 'busybox', '--split', '--squashfs', '--compression', 'xz', path.join(dir, 'lxd.tar.xz')]);
    if (e.code !== 0) throw new Error(e.stderr);
    const meta = path.join(dir, 'lxd.tar.xz');
    const root = path.join(dir, 'lxd.root.squashfs');
    fingerprint = sha(meta, root);
    // A second product whose announced rootfs checksum is wrong.
    const bad = path.join(www, 'images', 'bad');
    fs.mkdirSync(bad, { recursive: true });
    fs.copyFileSync(meta, path.join(bad, 'lxd.tar.xz'));
    fs.copyFileSync(root, path.join(bad, 'lxd.root.squashfs'));
    fs.appendFileSync(path.join(bad, 'lxd.root.squashfs'), Buffer.alloc(4096, 1)); // another fingerprint
    fs.mkdirSync(path.join(www, 'streams/v1'), { recursive: true });
    fs.writeFileSync(
      path.join(www, 'streams/v1/index.json'),
      JSON.stringify({
        format: 'index:1.0',
        index: { images: { datatype: 'image-downloads', path: 'streams/v1/images.json', format: 'products:1.0', products: ['busybox:test:amd64:default'] } },
      }),
    );
    fs.writeFileSync(
      path.join(www, 'streams/v1/images.json'),
      JSON.stringify({
        format: 'products:1.0',
        content_id: 'images',
        datatype: 'image-downloads',
        products: {
          'busybox:test:amd64:default': product('bb', 'bb/test,bb', meta, root),
          'busybox:bad:amd64:default': product('bad', 'bad', path.join(bad, 'lxd.tar.xz'), path.join(bad, 'lxd.root.squashfs'), '0'.repeat(64)),
        },
      }),
    );
    server = http.createServer((req, res) => {
      const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push({ url, range: req.headers.range });
      const file = path.join(www, url);
      if (!file.startsWith(www + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      const data = fs.readFileSync(file);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const body = data.subarray(start);
      res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}) });
      const limit = cut.get(url);
      if (limit !== undefined) {
        cut.delete(url);
        res.write(body.subarray(0, limit), () => res.destroy());
        return;
      }
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  test.serial.after.always(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await env.cleanup();
    await src.cleanup();
  });

  // The server runs in this process: commands that reach it must not block the event loop.
  const okAsync = async (t: { fail: (m: string) => void }, args: string[]) => {
    const r = await env.cliAsync(args);
    if (r.code !== 0) t.fail(`tslxc ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };

  test.serial('remote add, list, rename, remove; the images remote is there by default', (t) => {
    t.regex(env.ok(t, ['remote', 'list']), /images\s+https:\/\/images\.linuxcontainers\.org/);
    env.ok(t, ['remote', 'add', 'tmp', base]);
    env.ok(t, ['remote', 'rename', 'tmp', 'tmp2']);
    const list = JSON.parse(env.ok(t, ['remote', 'list', '--format', 'json']));
    t.truthy(list.find((r: { name: string; url: string }) => r.name === 'tmp2' && r.url === base));
    env.ok(t, ['remote', 'remove', 'tmp2']);
    t.regex(env.cli(['remote', 'add', 'x', 'ftp://a']).stderr, /http:\/\/ or https:\/\//);
    env.ok(t, ['remote', 'add', 'loop', base]);
  });

  test.serial('image copy REMOTE:ALIAS local: verifies and keeps the fingerprint the server announced', async (t) => {
    t.regex(await okAsync(t, ['image', 'copy', 'loop:bb/test', 'local:', '--alias', 'from-remote']), new RegExp(fingerprint));
    const info = JSON.parse(env.ok(t, ['image', 'info', 'from-remote', '--format', 'json']));
    t.is(info.fingerprint, fingerprint);
    t.is(info.os, 'busybox');
    t.deepEqual(
      fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((f) => f.startsWith('.') && f !== '.downloads'),
      [],
    );
  });

  test.serial('launch REMOTE:ALIAS uses the stored image when the fingerprint is there already', async (t) => {
    const before = requests.filter((r) => r.url.startsWith('/images/')).length;
    await okAsync(t, ['launch', 'loop:bb', 'r1']);
    t.is(requests.filter((r) => r.url.startsWith('/images/')).length, before, 'no image file was downloaded again');
    t.is(env.ok(t, ['exec', 'r1', '--', 'cat', '/proc/1/comm']).trim(), 'init');
    t.is(JSON.parse(env.ok(t, ['config', 'show', 'r1', '--format', 'json'])).image.fingerprint, fingerprint);
  });

  test.serial('an interrupted download resumes with a Range request', async (t) => {
    env.ok(t, ['image', 'delete', fingerprint, '--force']);
    cut.set('/images/bb/lxd.root.squashfs', 100_000);
    const first = await env.cliAsync(['image', 'copy', 'loop:bb', 'local:']);
    t.not(first.code, 0);
    t.regex(first.stderr, /interrupted.*run the command again to resume/);
    t.is(
      first.stderr
        .trim()
        .split('\n')
        .filter((l) => !/^download:|^unpack:/.test(l)).length,
      1,
    );
    await okAsync(t, ['image', 'copy', 'loop:bb', 'local:']);
    t.truthy(requests.find((r) => r.url === '/images/bb/lxd.root.squashfs' && r.range === 'bytes=100000-'));
    t.is(JSON.parse(env.ok(t, ['image', 'info', fingerprint.slice(0, 12), '-f', 'json'])).fingerprint, fingerprint);
  });

  test.serial('a file that does not match its sha256 is refused and removed; an unreachable remote is one line', async (t) => {
    const r = await env.cliAsync(['image', 'copy', 'loop:bad', 'local:']);
    t.not(r.code, 0);
    t.regex(r.stderr, /failed verification.*sha256/);
    const images = JSON.parse(env.ok(t, ['image', 'list', '-f', 'json']));
    t.is(images.length, 1);
    const dl = path.join(env.paths.stateDir, 'images', '.downloads');
    const leftovers = fs.existsSync(dl)
      ? fs.readdirSync(dl, { recursive: true }).filter((f) => String(f).endsWith('.part') || String(f).endsWith('.squashfs'))
      : [];
    t.deepEqual(leftovers, []);
    env.ok(t, ['remote', 'add', 'dead', 'http://127.0.0.1:9']);
    const d = await env.cliAsync(['launch', 'dead:bb', 'r2']);
    t.not(d.code, 0);
    t.regex(d.stderr, /Cannot reach remote "dead"/);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'containers', 'r2')));
    const missing = await env.cliAsync(['image', 'copy', 'loop:nope', 'local:']);
    t.regex(missing.stderr, /Image "nope" not found on remote "loop"/);
  });
}
