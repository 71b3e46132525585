import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { loadRecipe, findRecipe } from '../../../lib/image/recipe.js';

/**
 * `ubuntu`: bare `launch ubuntu` resolves through the default `images` remote (here a
 * simplestreams server on 127.0.0.1 serving a busybox image under ubuntu/noble); the recipe
 * (debootstrap from an Ubuntu mirror) is built by `image build` or with --mirror, and a mirror
 * that cannot be reached (a port on 127.0.0.1 that refuses: no traffic leaves the host) is one
 * line naming the alternatives. Nothing is ever sent to Ubuntu's servers.
 */
if (requireRoot(test)) {
  const env = new TestEnv('ubuntu');
  const src = new TestEnv('ubuntu-src');
  const www = path.join(env.root, 'www');
  const sha = (...files: string[]) => {
    const h = crypto.createHash('sha256');
    for (const f of files) h.update(fs.readFileSync(f));
    return h.digest('hex');
  };
  const requests: string[] = [];
  let server: http.Server;
  let base = '';
  let refused = '';

  test.before(async () => {
    const b = src.cli(['image', 'build', 'busybox']);
    if (b.code !== 0) throw new Error(b.stderr);
    const dir = path.join(www, 'images', 'ub');
    fs.mkdirSync(dir, { recursive: true });
    const meta = path.join(dir, 'lxd.tar.xz');
    const e = src.cli(['image', 'export', 'busybox', '--split', '--squashfs', '--compression', 'xz', meta]);
    if (e.code !== 0) throw new Error(e.stderr);
    const root = path.join(dir, 'lxd.root.squashfs');
    fs.mkdirSync(path.join(www, 'streams/v1'), { recursive: true });
    fs.writeFileSync(
      path.join(www, 'streams/v1/index.json'),
      JSON.stringify({
        format: 'index:1.0',
        index: { images: { datatype: 'image-downloads', path: 'streams/v1/images.json', format: 'products:1.0', products: ['ubuntu:noble:amd64:default'] } },
      }),
    );
    const item = (f: string, ftype: string, extra = {}) => ({
      ftype,
      path: `images/ub/${path.basename(f)}`,
      sha256: sha(f),
      size: fs.statSync(f).size,
      ...extra,
    });
    fs.writeFileSync(
      path.join(www, 'streams/v1/images.json'),
      JSON.stringify({
        format: 'products:1.0',
        products: {
          'ubuntu:noble:amd64:default': {
            aliases: 'ubuntu/noble,ubuntu/24.04',
            arch: 'amd64',
            os: 'ubuntu',
            release: 'noble',
            versions: {
              '20260101_00:00': {
                items: { 'lxd.tar.xz': item(meta, 'lxd.tar.xz', { combined_squashfs_sha256: sha(meta, root) }), 'rootfs.squashfs': item(root, 'squashfs') },
              },
            },
          },
        },
      }),
    );
    server = http.createServer((req, res) => {
      const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push(url);
      const file = path.join(www, url);
      if (!file.startsWith(www + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': fs.statSync(file).size });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A port on loopback that refuses: listened on once, then closed.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    refused = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/ubuntu`;
    await new Promise((r) => probe.close(r));
    for (const args of [
      ['remote', 'remove', 'images'],
      ['remote', 'add', 'images', base],
    ]) {
      const r = env.cli(args);
      if (r.code !== 0) throw new Error(r.stderr);
    }
  });
  test.after.always(async () => {
    server?.close();
    await src.cleanup();
  });
  leftoverHooks(test, env);

  test("the ubuntu recipe: noble by default, 22.04 is jammy; debootstrap uses gutsy's script for noble", (t) => {
    const file = findRecipe('ubuntu')!;
    const noble = loadRecipe(file);
    t.is(noble.release, 'noble');
    t.is(noble.remote, 'images:ubuntu/noble');
    t.like(noble.source, {
      type: 'debootstrap',
      mirror: 'http://archive.ubuntu.com/ubuntu',
      script: 'gutsy',
      keyring: '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
    });
    const jammy = loadRecipe(file, { release: '22.04' });
    t.is(jammy.release, 'jammy');
    t.is(jammy.remote, 'images:ubuntu/jammy');
    t.true(fs.existsSync('/usr/share/debootstrap/scripts/gutsy'));
  });

  /** The server runs in this process: commands that talk to it must not block it (no spawnSync). */
  const okAsync = async (t: { fail: (m: string) => void }, args: string[]) => {
    const r = await env.cliAsync(args);
    if (r.code !== 0) t.fail(`tslxc ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const imagesTmp = () =>
    fs.existsSync(path.join(env.paths.stateDir, 'images')) ? fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((d) => d.startsWith('.tmp-')) : [];

  test.serial('bare "ubuntu" resolves through the default images remote; the second launch reuses it', async (t) => {
    await okAsync(t, ['launch', 'ubuntu', 'u1']);
    const img = JSON.parse(env.ok(t, ['image', 'info', 'ubuntu', '--format', 'json']));
    t.deepEqual(img.aliases.sort(), ['ubuntu', 'ubuntu/noble']);
    t.is(env.ok(t, ['exec', 'u1', '--', 'sh', '-c', 'echo up']), 'up\n');
    const before = requests.length;
    await okAsync(t, ['launch', 'ubuntu', 'u2']);
    t.is(requests.length, before, 'no request: the stored image is used');
  });

  test.serial('a release the remote does not have is one line naming the alternatives', async (t) => {
    const r = await env.cliAsync(['launch', 'ubuntu', 'u3', '--release', '22.04']);
    t.not(r.code, 0);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/^[a-z]+: /.test(l));
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0], /images:ubuntu\/jammy/);
    t.regex(lines[0], /--mirror/);
    t.regex(lines[0], /image import/);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'containers', 'u3')));
  });

  test.serial('an Ubuntu mirror that cannot be reached is one line naming the alternatives; nothing is left', (t) => {
    for (const args of [
      ['launch', 'ubuntu', 'u4', '--mirror', refused],
      ['image', 'build', 'ubuntu', '--mirror', refused],
    ]) {
      const r = env.cli(args);
      t.not(r.code, 0);
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !/^[a-z]+: /.test(l));
      t.is(lines.length, 1, r.stderr);
      t.regex(lines[0], /Cannot reach the Ubuntu mirror http:\/\/127\.0\.0\.1:\d+\/ubuntu/);
      t.regex(lines[0], /ECONNREFUSED/);
      t.regex(lines[0], /--mirror/);
      t.regex(lines[0], /images:ubuntu\/noble/);
      t.regex(lines[0], /image import/);
    }
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'containers', 'u4')));
    t.deepEqual(imagesTmp(), []);
    t.false(
      fs.readdirSync(path.join(env.paths.cacheDir, 'builds')).some((d) => d.startsWith('ubuntu-')),
      'no build was stored',
    );
  });

  test.serial('the images remote unreachable: one line naming --mirror and import', (t) => {
    env.ok(t, ['remote', 'remove', 'images']);
    env.ok(t, ['remote', 'add', 'images', refused.replace(/\/ubuntu$/, '')]);
    env.ok(t, ['image', 'delete', 'ubuntu', '--force']);
    const r = env.cli(['launch', 'ubuntu', 'u5']);
    t.not(r.code, 0);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !/^[a-z]+: /.test(l));
    t.is(lines.length, 1, r.stderr);
    t.regex(lines[0], /Cannot get image "ubuntu" from images:ubuntu\/noble/);
    t.regex(lines[0], /--mirror URL/);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'containers', 'u5')));
  });
}
