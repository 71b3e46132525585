import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ApiServer } from '../../helpers/api.js';
import { hostLinks, teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { makeTarGz } from '../../helpers/tarball.js';
import { assertSameShape, goldenMetadata, loadGolden } from '../../helpers/shape.js';

/**
 * Profiles, images, networks and storage through `tslxc serve` with the clients users have: the
 * `lxc` 5.0 client and pylxd, over the unix socket, and the same answers as raw requests compared
 * with LXD 5.0.2's shapes.
 */
if (requireRoot(test)) {
  const env = new TestEnv('apiresc');
  const bridge = uniqueBridge('tslc');
  let server: ApiServer;
  const image = makeTarGz([
    {
      name: 'metadata.yaml',
      content: 'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: test\n  release: "1"\n  description: client test image\n',
    },
    { name: 'rootfs/', type: '5' },
    { name: 'rootfs/hello', content: 'hi\n' },
  ]);
  const fingerprint = crypto.createHash('sha256').update(image).digest('hex');
  const tarball = path.join(env.root, 'tiny.tar.gz');

  test.before(async () => {
    fs.writeFileSync(tarball, image);
    server = await ApiServer.start(env);
  });
  test.after.always(async () => {
    await server?.stop();
    await env.deleteContainers();
    await teardownNetworks(env);
    await env.cleanup();
  });

  const lxc = async (t: { fail(m: string): void }, args: string[], conf?: string) => {
    const r = await server.lxc(args, { conf });
    if (r.code !== 0) t.fail(`lxc ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };

  test.serial('lxc profile list, create, set, device add, edit, rename, delete', async (t) => {
    const conf = server.lxcConf();
    await lxc(t, ['profile', 'create', 'web'], conf);
    await lxc(t, ['profile', 'set', 'web', 'limits.cpu', '1'], conf);
    t.regex(await lxc(t, ['profile', 'show', 'web'], conf), /limits\.cpu: "1"/);
    const list = JSON.parse(await lxc(t, ['profile', 'list', '--format', 'json'], conf)) as Array<{ name: string; config: Record<string, string> }>;
    t.deepEqual(list.find((p) => p.name === 'web')?.config, { 'limits.cpu': '1' });
    const g = await server.request('GET', '/1.0/profiles/web');
    t.truthy(g.headers.etag);
    assertSameShape(t, g.json!.metadata, goldenMetadata('profile'));
    await lxc(t, ['profile', 'device', 'add', 'web', 'data', 'disk', `source=${env.root}`, 'path=/mnt/data'], conf);
    t.regex(await lxc(t, ['profile', 'device', 'show', 'web'], conf), /path: \/mnt\/data/);
    // edit sends the whole profile back (name and used_by too) with If-Match.
    const edited = (await lxc(t, ['profile', 'show', 'web'], conf)).replace('description: ""', 'description: edited');
    const e = await server.lxc(['profile', 'edit', 'web'], { conf, input: edited });
    t.is(e.code, 0, e.stderr);
    t.regex(await lxc(t, ['profile', 'show', 'web'], conf), /description: edited/);
    await lxc(t, ['profile', 'rename', 'web', 'web2'], conf);
    await lxc(t, ['profile', 'delete', 'web2'], conf);
    const gone = await server.lxc(['profile', 'show', 'web2'], { conf });
    t.not(gone.code, 0);
    t.regex(gone.stderr, /not found/i);
    t.is((await server.request('GET', '/1.0/profiles/web')).status, 404);
    t.is((await server.request('GET', '/1.0/profiles/web2')).status, 404);
  });

  test.serial('lxc image import, list, info, alias, export, delete', async (t) => {
    const conf = server.lxcConf();
    t.regex(await lxc(t, ['image', 'import', tarball, '--alias', 'tiny'], conf), new RegExp(fingerprint));
    const list = JSON.parse(await lxc(t, ['image', 'list', '--format', 'json'], conf)) as Array<{ fingerprint: string; aliases: Array<{ name: string }> }>;
    t.is(list.length, 1);
    t.is(list[0].fingerprint, fingerprint);
    t.deepEqual(
      list[0].aliases.map((a) => a.name),
      ['tiny'],
    );
    t.regex(await lxc(t, ['image', 'info', 'tiny'], conf), new RegExp(`Fingerprint: ${fingerprint}`));
    await lxc(t, ['image', 'alias', 'create', 'tiny2', fingerprint.slice(0, 12)], conf);
    await lxc(t, ['image', 'alias', 'rename', 'tiny2', 'tiny3'], conf);
    t.regex(await lxc(t, ['image', 'alias', 'list'], conf), /tiny3/);
    await lxc(t, ['image', 'alias', 'delete', 'tiny3'], conf);
    // The client checks the export's sha256 against the fingerprint.
    const out = path.join(env.root, 'exported');
    await lxc(t, ['image', 'export', 'tiny', out], conf);
    t.true(fs.readFileSync(`${out}.tar.gz`).equals(image));
    assertSameShape(t, (await server.request('GET', '/1.0/images?recursion=1')).json!.metadata, goldenMetadata('images-recursion1'));
    await lxc(t, ['image', 'delete', 'tiny'], conf);
    t.deepEqual((await server.request('GET', '/1.0/images')).json!.metadata, []);
  });

  test.serial('lxc image export of a built image: the sha256 the client checks is the fingerprint shown; both ids find it', async (t) => {
    const conf = server.lxcConf();
    const built = env.cli(['image', 'build', 'busybox']);
    t.is(built.code, 0, built.stderr);
    const treeId = (JSON.parse(env.ok(t, ['image', 'list', '--format', 'json'])) as Array<{ fingerprint: string; aliases: string[] }>).find((i) =>
      JSON.stringify(i).includes('busybox'),
    )!.fingerprint;
    t.regex(treeId, /^[0-9a-f]{64}$/);
    const out = path.join(env.root, 'built');
    await lxc(t, ['image', 'export', 'busybox', out], conf);
    const data = fs.readFileSync(`${out}.tar.gz`);
    const sha = crypto.createHash('sha256').update(data).digest('hex');
    t.not(sha, treeId);
    const shown = (await server.request('GET', `/1.0/images/${treeId.slice(0, 12)}`)).json!.metadata as { fingerprint: string; size: number; filename: string };
    t.is(shown.fingerprint, sha, 'the API shows the export sha256');
    t.is(shown.size, data.length);
    t.is(shown.filename, `${sha}.tar.gz`);
    t.is((await server.request('GET', `/1.0/images/${sha.slice(0, 10)}`)).json!.metadata.fingerprint, sha, 'a prefix of the sha finds it');
    t.deepEqual((await server.request('GET', '/1.0/images')).json!.metadata, [`/1.0/images/${sha}`]);
    // Made once: a second export sends the same bytes, with no new file. (The client checks the
    // download against the name it was given when that is no alias: a sha256 prefix, not a tree id.)
    const again = path.join(env.root, 'built2');
    await lxc(t, ['image', 'export', sha.slice(0, 12), again], conf);
    t.true(fs.readFileSync(`${again}.tar.gz`).equals(data));
    const byTree = await server.request('GET', `/1.0/images/${treeId}/export`);
    t.is(byTree.status, 200);
    t.is(byTree.headers['content-disposition'], `attachment; filename=${sha}.tar.gz`, 'the tree id finds the same export');
    t.is(Number(byTree.headers['content-length']), data.length);
    t.deepEqual(
      fs.readdirSync(path.join(env.paths.stateDir, 'images', treeId)).filter((f) => f.startsWith('export-')),
      [`export-${sha}.tar.gz`],
    );
    // The CLI keeps the tree digest; creates take either id.
    t.regex(env.ok(t, ['image', 'list']), new RegExp(treeId.slice(0, 12)));
    const pools = () => (JSON.parse(env.ok(t, ['storage', 'list', '--format', 'json'])) as Array<{ name: string }>).map((p) => p.name);
    const poolsBefore = pools();
    await lxc(t, ['init', sha.slice(0, 12), 'x1'], conf);
    env.ok(t, ['create', sha.slice(0, 16), 'x2']);
    t.is(JSON.parse(env.ok(t, ['info', 'x2', '--format', 'json'])).config['volatile.base_image'], treeId);
    env.ok(t, ['delete', 'x1', 'x2']);
    // The first create made the default pool: it goes, as later tests count pools.
    for (const pool of pools().filter((p) => !poolsBefore.includes(p))) env.ok(t, ['storage', 'delete', pool]);
    await lxc(t, ['image', 'alias', 'create', 'bb', sha.slice(0, 12)], conf);
    t.is((await server.request('GET', '/1.0/images/aliases/bb')).json!.metadata.target, sha, 'an alias shows the sha too');
    await lxc(t, ['image', 'alias', 'delete', 'bb'], conf);
    // pylxd checks nothing, but gets the same bytes; the round trip imports them as LXD would.
    const py = await server.pylxd(
      `import pylxd, hashlib, warnings\nwarnings.simplefilter('ignore')\nc = pylxd.Client()\nim = c.images.get_by_alias('busybox')\nassert hashlib.sha256(im.export().read()).hexdigest() == im.fingerprint == ${JSON.stringify(sha)}, im.fingerprint\nprint('ok')\n`,
      { timeoutMs: 60_000 },
    );
    t.is(py.code, 0, py.stderr);
    await lxc(t, ['image', 'import', `${out}.tar.gz`, '--alias', 'bbcopy'], conf);
    t.is((await server.request('GET', '/1.0/images/aliases/bbcopy')).json!.metadata.target, sha, 'imported: its fingerprint is the sha256');
    await lxc(t, ['image', 'delete', 'bbcopy'], conf);
    env.ok(t, ['image', 'delete', 'busybox']);
    t.deepEqual((await server.request('GET', '/1.0/images')).json!.metadata, []);
  });

  test.serial('lxc image import META ROOTFS (split, with properties); image edit, PUT/PATCH; alias PUT/PATCH', async (t) => {
    const conf = server.lxcConf();
    const meta = makeTarGz([
      {
        name: 'metadata.yaml',
        content: 'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: test\n  release: "2"\n  description: split test image\n',
      },
    ]);
    const rootfs = makeTarGz([{ name: 'hello', content: 'split\n' }]);
    const splitFp = crypto.createHash('sha256').update(meta).update(rootfs).digest('hex');
    fs.writeFileSync(path.join(env.root, 'meta.tar.gz'), meta);
    fs.writeFileSync(path.join(env.root, 'rootfs.tar.gz'), rootfs);
    const out = await lxc(
      t,
      ['image', 'import', path.join(env.root, 'meta.tar.gz'), path.join(env.root, 'rootfs.tar.gz'), '--alias', 'split', 'color=blue'],
      conf,
    );
    t.regex(out, new RegExp(splitFp));
    const img = (await server.request('GET', `/1.0/images/${splitFp}`)).json!.metadata;
    t.like(img.properties, { os: 'test', release: '2', color: 'blue' });
    // The split export gives both files back; the client checks their sha256 against the fingerprint.
    const exported = path.join(env.root, 'split-export');
    await lxc(t, ['image', 'export', 'split', exported], conf);
    // A split export to a file name: the name and NAME.root, as LXD's client writes them.
    t.true(fs.readFileSync(exported).equals(meta));
    t.true(fs.readFileSync(`${exported}.root`).equals(rootfs));

    // lxc image edit: GET and PUT with If-Match.
    const edit = await server.lxc(['image', 'edit', 'split'], {
      conf,
      input: 'auto_update: true\nproperties:\n  os: test\n  release: "3"\npublic: true\nexpires_at: 2030-01-02T03:04:05Z\nprofiles: [default]\n',
    });
    t.is(edit.code, 0, edit.stderr);
    const edited = (await server.request('GET', `/1.0/images/${splitFp}`)).json!.metadata;
    t.is(edited.public, true);
    t.is(edited.auto_update, true);
    t.is(Date.parse(edited.expires_at), Date.parse('2030-01-02T03:04:05Z'));
    t.deepEqual(edited.properties, { os: 'test', release: '3', description: '' });
    // PATCH merges properties; a stale ETag is refused; an unknown profile too.
    t.is((await server.request('PATCH', `/1.0/images/${splitFp}`, { properties: { color: 'red' }, public: false })).status, 200);
    const patched = await server.request('GET', `/1.0/images/${splitFp}`);
    t.like(patched.json!.metadata, { public: false, auto_update: true, properties: { os: 'test', release: '3', color: 'red' } });
    t.is((await server.request('PUT', `/1.0/images/${splitFp}`, { properties: {} }, { 'If-Match': '"stale"' })).status, 412);
    t.is((await server.request('PUT', `/1.0/images/${splitFp}`, { profiles: ['nope'] })).status, 400);
    t.is((await server.request('PATCH', `/1.0/images/${splitFp}`, { public: 'yes' })).status, 400);
    // The export still gives the imported files back, byte for byte.
    await lxc(t, ['image', 'export', 'split', `${exported}2`], conf);
    t.true(fs.readFileSync(`${exported}2`).equals(meta));

    // Aliases: a description at create, PATCH it, PUT retargets, rename keeps the description.
    await lxc(t, ['image', 'import', tarball, '--alias', 'tiny'], conf);
    t.is((await server.request('POST', '/1.0/images/aliases', { name: 'moving', target: fingerprint, description: 'first' })).status, 201);
    const alias = await server.request('GET', '/1.0/images/aliases/moving');
    t.like(alias.json!.metadata, { name: 'moving', description: 'first', target: fingerprint });
    t.is((await server.request('PATCH', '/1.0/images/aliases/moving', { description: 'second' }, { 'If-Match': String(alias.headers.etag) })).status, 200);
    t.is((await server.request('PATCH', '/1.0/images/aliases/moving', { description: 'third' }, { 'If-Match': String(alias.headers.etag) })).status, 412);
    t.is((await server.request('PUT', '/1.0/images/aliases/moving', { target: splitFp })).status, 200);
    t.like((await server.request('GET', '/1.0/images/aliases/moving')).json!.metadata, { description: '', target: splitFp });
    t.is((await server.request('PATCH', '/1.0/images/aliases/moving', { description: 'kept' })).status, 200);
    await lxc(t, ['image', 'alias', 'rename', 'moving', 'moved'], conf);
    t.like((await server.request('GET', '/1.0/images/aliases/moved')).json!.metadata, { description: 'kept', target: splitFp });
    t.is((await server.request('PUT', '/1.0/images/aliases/moved', { description: 'x' })).status, 400);
    t.is((await server.request('PUT', '/1.0/images/aliases/moved', { target: 'f'.repeat(64) })).status, 404);
    t.is((await server.request('PUT', '/1.0/images/aliases/gone', { target: splitFp })).status, 404);
    // A multipart upload without a rootfs part, or with a VM's, is refused and leaves nothing.
    const boundary = 'b0undary';
    const form = (name: string) =>
      Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="metadata"; filename="m"\r\n\r\n`),
        meta,
        Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="r"\r\n\r\n`),
        rootfs,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
    const ctype = { 'Content-Type': `multipart/form-data; boundary=${boundary}` };
    t.is((await server.request('POST', '/1.0/images', form('rootfs.img'), ctype)).status, 400);
    t.is((await server.request('POST', '/1.0/images', form('other'), ctype)).status, 400);
    t.is((await server.request('POST', '/1.0/images', form('rootfs').subarray(0, 100), ctype)).status, 400);
    t.deepEqual(
      fs.readdirSync(path.join(env.paths.stateDir, 'images')).filter((f) => f.startsWith('.tmp')),
      [],
    );
    await lxc(t, ['image', 'delete', 'split', 'tiny'], conf);
  });

  test.serial('lxc network create/list/show/set/delete', async (t) => {
    const conf = server.lxcConf();
    await lxc(t, ['network', 'create', bridge, 'ipv4.nat=false'], conf);
    t.deepEqual(hostLinks(bridge), [bridge]);
    const list = JSON.parse(await lxc(t, ['network', 'list', '--format', 'json'], conf)) as Array<{ name: string; managed: boolean }>;
    t.deepEqual(
      list.map((n) => [n.name, n.managed]),
      [[bridge, true]],
    );
    await lxc(t, ['network', 'set', bridge, 'bridge.mtu', '1400'], conf);
    t.regex(await lxc(t, ['network', 'info', bridge], conf), /MTU: 1400/);
    t.regex(await lxc(t, ['network', 'show', bridge], conf), /bridge\.mtu: "1400"/);
    assertSameShape(t, (await server.request('GET', `/1.0/networks/${bridge}`)).json!.metadata, goldenMetadata('network'));
    await lxc(t, ['network', 'delete', bridge], conf);
    t.deepEqual(hostLinks(bridge), []);
  });

  test.serial('a network with ipv4.address=none and ipv6.address=none: its bridge, no dnsmasq (lxc and the CLI)', async (t) => {
    const conf = server.lxcConf();
    const dnsmasqOf = (name: string) =>
      fs
        .readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`/networks/${name}/dnsmasq.conf`);
          } catch {
            return false;
          }
        });
    const none = uniqueBridge('tsln');
    await lxc(t, ['network', 'create', none, 'ipv4.address=none', 'ipv6.address=none'], conf);
    t.deepEqual(hostLinks(none), [none]);
    t.deepEqual(dnsmasqOf(none), []);
    t.like((await server.request('GET', `/1.0/networks/${none}`)).json!.metadata.config, { 'ipv4.address': 'none', 'ipv6.address': 'none' });
    t.regex(env.ok(t, ['network', 'list']), new RegExp(`^${none} +none +none .* UP `, 'm'));
    // Given an address later, it serves it; back to none, its dnsmasq goes.
    await lxc(t, ['network', 'set', none, 'ipv4.address', '10.251.77.1/24'], conf);
    t.is(dnsmasqOf(none).length, 1);
    await lxc(t, ['network', 'set', none, 'ipv4.address', 'none'], conf);
    t.deepEqual(dnsmasqOf(none), []);
    await lxc(t, ['network', 'delete', none], conf);
    t.deepEqual(hostLinks(none), []);
    // The CLI, the same.
    const cli = uniqueBridge('tsln');
    env.ok(t, ['network', 'create', cli, 'ipv4.address=none', 'ipv6.address=none']);
    t.deepEqual(dnsmasqOf(cli), []);
    env.ok(t, ['network', 'delete', cli]);
    t.deepEqual(hostLinks(cli), []);
  });

  test.serial('lxc storage create/list/show and volume create/list/delete', async (t) => {
    const conf = server.lxcConf();
    await lxc(t, ['storage', 'create', 'p1', 'dir'], conf);
    t.regex(await lxc(t, ['storage', 'list'], conf), /p1 +\| dir/);
    t.regex(await lxc(t, ['storage', 'show', 'p1'], conf), /driver: dir/);
    await lxc(t, ['storage', 'volume', 'create', 'p1', 'v1'], conf);
    const vols = JSON.parse(await lxc(t, ['storage', 'volume', 'list', 'p1', '--format', 'json'], conf)) as Array<{ name: string; type: string }>;
    t.deepEqual(
      vols.map((v) => [v.type, v.name]),
      [['custom', 'v1']],
    );
    assertSameShape(t, (await server.request('GET', '/1.0/storage-pools/p1/volumes/custom/v1')).json!.metadata, goldenMetadata('storage-volume'));
    const busy = await server.lxc(['storage', 'delete', 'p1'], { conf });
    t.not(busy.code, 0);
    t.regex(busy.stderr, /volumes: v1/);
    await lxc(t, ['storage', 'volume', 'delete', 'p1', 'v1'], conf);
    await lxc(t, ['storage', 'delete', 'p1'], conf);
    t.is((await server.request('GET', '/1.0/storage-pools/p1')).status, 404);
  });

  test.serial('lxc storage volume: config (user.*, size on btrfs), set/unset/edit with ETag, rename', async (t) => {
    const conf = server.lxcConf();
    await lxc(t, ['storage', 'create', 'p2', 'dir'], conf);
    await lxc(t, ['storage', 'volume', 'create', 'p2', 'v2', 'user.team=blue'], conf);
    const url = '/1.0/storage-pools/p2/volumes/custom/v2';
    t.deepEqual((await server.request('GET', url)).json!.metadata.config, { 'user.team': 'blue' });
    await lxc(t, ['storage', 'volume', 'set', 'p2', 'v2', 'user.owner=ann'], conf);
    await lxc(t, ['storage', 'volume', 'unset', 'p2', 'v2', 'user.team'], conf);
    t.deepEqual((await server.request('GET', url)).json!.metadata.config, { 'user.owner': 'ann' });
    const edit = await server.lxc(['storage', 'volume', 'edit', 'p2', 'v2'], { conf, input: 'description: shared data\nconfig:\n  user.owner: bob\n' });
    t.is(edit.code, 0, edit.stderr);
    const got = await server.request('GET', url);
    t.like(got.json!.metadata, { description: 'shared data', config: { 'user.owner': 'bob' } });
    // A stale ETag, a size on a dir pool, an unknown key: refused, nothing changed.
    t.is((await server.request('PATCH', url, { config: { 'user.x': 'y' } }, { 'If-Match': '"stale"' })).status, 412);
    const size = await server.lxc(['storage', 'volume', 'set', 'p2', 'v2', 'size=1GiB'], { conf });
    t.not(size.code, 0);
    t.regex(size.stderr, /dir pool cannot limit/);
    t.is((await server.request('PATCH', url, { config: { 'block.filesystem': 'ext4' } })).status, 400);
    t.is((await server.request('POST', '/1.0/storage-pools/p2/volumes', { name: 'v9', config: { size: '1GiB' } })).status, 400);
    t.is((await server.request('GET', '/1.0/storage-pools/p2/volumes/custom/v9')).status, 404);
    t.is((await server.request('GET', url)).headers.etag, got.headers.etag);
    // Rename keeps description and config.
    await lxc(t, ['storage', 'volume', 'rename', 'p2', 'v2', 'v3'], conf);
    t.like((await server.request('GET', '/1.0/storage-pools/p2/volumes/custom/v3')).json!.metadata, {
      description: 'shared data',
      config: { 'user.owner': 'bob' },
    });
    await lxc(t, ['storage', 'volume', 'delete', 'p2', 'v3'], conf);
    await lxc(t, ['storage', 'delete', 'p2'], conf);

    // btrfs: size is a qgroup limit on the volume's subvolume.
    await lxc(t, ['storage', 'create', 'pb', 'btrfs', 'size=512MiB'], conf);
    try {
      await lxc(t, ['storage', 'volume', 'create', 'pb', 'vb', 'size=64MiB'], conf);
      t.is((await server.request('GET', '/1.0/storage-pools/pb/volumes/custom/vb')).json!.metadata.config.size, '64MiB');
      await lxc(t, ['storage', 'volume', 'set', 'pb', 'vb', 'size=32MiB'], conf);
      t.is((await server.request('GET', '/1.0/storage-pools/pb/volumes/custom/vb')).json!.metadata.config.size, '32MiB');
      const bad = await server.lxc(['storage', 'volume', 'set', 'pb', 'vb', 'size=lots'], { conf });
      t.not(bad.code, 0);
      await lxc(t, ['storage', 'volume', 'delete', 'pb', 'vb'], conf);
    } finally {
      await server.lxc(['storage', 'delete', 'pb'], { conf });
    }
  });

  test.serial('entity_description: profiles, networks, pools and volumes keep a description, by POST, PATCH and PUT', async (t) => {
    t.true(((await server.request('GET', '/1.0')).json!.metadata.api_extensions as string[]).includes('entity_description'));
    const net = `${bridge}d`;
    const kinds: Array<[string, string, Record<string, unknown>]> = [
      ['/1.0/profiles', 'dp', {}],
      ['/1.0/networks', net, { config: { 'ipv4.address': 'none', 'ipv6.address': 'none' } }],
      ['/1.0/storage-pools', 'dpool', { driver: 'dir' }],
      ['/1.0/storage-pools/dpool/volumes/custom', 'dv', {}],
    ];
    const description = async (url: string) => (await server.request('GET', url)).json!.metadata.description as string;
    for (const [base, name, extra] of kinds) {
      const url = `${base}/${name}`;
      const made = await server.request('POST', base, { name, description: 'first', ...extra });
      t.true(made.status < 300, `${base}: ${made.body}`);
      t.is(await description(url), 'first', url);
      t.is((await server.request('PATCH', url, { description: 'second' })).status, 200, url);
      t.is(await description(url), 'second', url);
      const got = (await server.request('GET', url)).json!.metadata as Record<string, unknown>;
      t.is((await server.request('PUT', url, { ...got, description: 'third' })).status, 200, url);
      t.is(await description(url), 'third', url);
      const listed = (await server.request('GET', `${base}?recursion=1`)).json!.metadata as Array<{ name: string; description: string }>;
      t.is(listed.find((x) => x.name === name)?.description, 'third', `${base} lists it`);
    }
    for (const [base, name] of kinds.reverse()) t.is((await server.request('DELETE', `${base}/${name}`)).status, 200, `${base}/${name}`);
  });

  test.serial('pylxd: profiles, images, networks, storage pools', async (t) => {
    const script = `
import pylxd, warnings
warnings.simplefilter('ignore')
c = pylxd.Client()
p = c.profiles.create('pyp', config={'limits.cpu': '1'}, devices={})
p = c.profiles.get('pyp'); p.config['limits.memory'] = '256MiB'; p.save(wait=True)
assert c.profiles.get('pyp').config == {'limits.cpu': '1', 'limits.memory': '256MiB'}, c.profiles.get('pyp').config
p.delete(); assert not c.profiles.exists('pyp')
data = open(${JSON.stringify(tarball)}, 'rb').read()
im = c.images.create(data, wait=True)
assert im.fingerprint == ${JSON.stringify(fingerprint)}, im.fingerprint
assert [i.fingerprint for i in c.images.all()] == [im.fingerprint]
assert c.images.get(im.fingerprint).export().read() == data
im.delete(wait=True); assert c.images.all() == []
n = c.networks.create(${JSON.stringify(bridge)}, config={'ipv4.nat': 'false'})
assert c.networks.get(${JSON.stringify(bridge)}).managed
assert [x.name for x in c.networks.all()] == [${JSON.stringify(bridge)}]
n.delete(); assert not c.networks.exists(${JSON.stringify(bridge)})
sp = c.storage_pools.create({'name': 'pyp1', 'driver': 'dir', 'config': {}})
assert [s.name for s in c.storage_pools.all()] == ['pyp1']
v = sp.volumes.create({'name': 'pv', 'type': 'custom'})
assert [x.name for x in sp.volumes.all()] == ['pv']
v.delete(); sp.delete(); assert c.storage_pools.all() == []
print('ok')
`;
    const r = await server.pylxd(script, { timeoutMs: 120_000 });
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim(), 'ok');
    t.deepEqual(hostLinks(bridge), []);
  });

  test.serial('a server killed mid-upload: the next upload removes what it left, and works', async (t) => {
    const images = path.join(env.paths.stateDir, 'images');
    const temps = () => (fs.existsSync(images) ? fs.readdirSync(images).filter((n) => n.startsWith('.')) : []);
    const req = http.request({
      socketPath: server.socket,
      method: 'POST',
      path: '/1.0/images',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(64 * 1024 * 1024) },
    });
    req.on('error', () => {});
    req.write(Buffer.alloc(1024 * 1024));
    for (let i = 0; i < 200 && !temps().length; i++) await new Promise((r) => setTimeout(r, 25));
    t.is(temps().length, 1, 'the upload is being stored');
    await server.kill();
    req.destroy();
    server = await ApiServer.start(env);
    const conf = server.lxcConf();
    t.regex(await lxc(t, ['image', 'import', tarball, '--alias', 'again'], conf), new RegExp(fingerprint));
    t.deepEqual(temps(), []);
    await lxc(t, ['image', 'delete', 'again'], conf);
  });

  test.serial('whole answers over the socket against LXD 5.0.2: envelopes, operations, errors', async (t) => {
    const post = await server.request('POST', '/1.0/images', image, { 'Content-Type': 'application/octet-stream' });
    t.is(post.status, 202);
    t.truthy(post.headers.location);
    assertSameShape(t, post.json, loadGolden('image-post').shape);
    const wait = await server.request('GET', `${post.json!.operation}/wait?timeout=60`);
    assertSameShape(t, wait.json, loadGolden('image-post-wait').shape);
    for (const [name, url] of [
      ['images-recursion1', '/1.0/images?recursion=1'],
      ['image', `/1.0/images/${fingerprint}`],
      ['profiles-recursion1', '/1.0/profiles?recursion=1'],
      ['profile', '/1.0/profiles/default'],
      ['storage-pools-recursion0', '/1.0/storage-pools'],
      ['networks-recursion0', '/1.0/networks'],
      ['image-aliases-recursion1', '/1.0/images/aliases?recursion=1'],
    ] as const) {
      const r = await server.request('GET', url);
      t.is(r.status, loadGolden(name).http_status, url);
      assertSameShape(t, r.json, loadGolden(name).shape);
      if (loadGolden(name).headers.includes('etag')) t.truthy(r.headers.etag, url);
    }
    const created = await server.request('POST', '/1.0/profiles', { name: 'shape-p', config: {}, devices: {}, description: '' });
    t.is(created.status, 201);
    t.is(created.headers.location, '/1.0/profiles/shape-p');
    assertSameShape(t, created.json, loadGolden('profile-post').shape);
    const stale = await server.request('PUT', '/1.0/profiles/shape-p', {}, { 'If-Match': '"stale"' });
    t.is(stale.status, 412);
    assertSameShape(t, stale.json, loadGolden('error-precondition').shape);
    assertSameShape(t, (await server.request('DELETE', '/1.0/profiles/shape-p')).json, loadGolden('profile-delete').shape);
    const del = await server.request('DELETE', `/1.0/images/${fingerprint}`);
    t.is(del.status, 202);
    assertSameShape(t, del.json, loadGolden('image-delete').shape);
    await server.request('GET', `${del.json!.operation}/wait?timeout=60`);
    t.deepEqual((await server.request('GET', '/1.0/images')).json!.metadata, []);
  });
}
