import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { makeTarGz, type TarEntry } from '../../helpers/tarball.js';

/** The image store: LXD formats both ways, aliases, info, delete refusal, and hostile archives. */
if (requireRoot(test)) {
  const env = new TestEnv('img');
  const other = new TestEnv('img2');
  const out = () => fs.mkdtempSync(path.join(env.root, 'out-'));
  const sha = (...files: string[]) => {
    const h = crypto.createHash('sha256');
    for (const f of files) h.update(fs.readFileSync(f));
    return h.digest('hex');
  };
  const images = (e: TestEnv) => {
    const r = e.cli(['image', 'list', '--format', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as Array<{ fingerprint: string; aliases: string[] }>;
  };
  const storeDirs = (e: TestEnv) => (fs.existsSync(`${e.paths.stateDir}/images`) ? fs.readdirSync(`${e.paths.stateDir}/images`).sort() : []);

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  test.serial.after.always(async () => {
    await env.cleanup();
    await other.cleanup();
  });

  test.serial('unified export → import → export keeps the fingerprint (sha256 of the tarball, as LXD)', (t) => {
    const dir = out();
    env.ok(t, ['image', 'export', 'busybox', dir]);
    const [file] = fs.readdirSync(dir).map((f) => path.join(dir, f));
    t.regex(file, /\.tar\.gz$/);
    // Packing is deterministic: the same image exports to the same bytes.
    const again = path.join(out(), 'again.tar.gz');
    env.ok(t, ['image', 'export', 'busybox', again]);
    t.is(sha(again), sha(file));
    const r = other.ok(t, ['image', 'import', file, '--alias', 'bb']);
    t.regex(r, new RegExp(sha(file)));
    const info = JSON.parse(other.ok(t, ['image', 'info', 'bb', '--format', 'json']));
    t.is(info.fingerprint, sha(file));
    t.is(info.os, 'busybox');
    t.is(info.stop_signal, 'SIGUSR2');
    const back = path.join(out(), 'back.tar.gz');
    other.ok(t, ['image', 'export', info.fingerprint.slice(0, 8), back]);
    t.is(sha(back), info.fingerprint);
    // Importing again is a no-op that only adds the alias.
    t.regex(other.ok(t, ['image', 'import', back, '--alias', 'bb-again']), /already in the store/);
    t.deepEqual(
      images(other)
        .find((i) => i.fingerprint === info.fingerprint)
        ?.aliases.sort(),
      ['bb', 'bb-again'],
    );
    // The imported tree boots: a container made from it has busybox init.
    other.ok(t, ['create', 'bb', 'c1']);
    t.true(fs.existsSync(`${other.paths.stateDir}/containers/c1`));
  });

  for (const [label, args, rootExt] of [
    ['split tarballs, zstd', ['--split', '--compression', 'zstd'], '.tar.zst'],
    ['split metadata + squashfs, xz', ['--split', '--squashfs', '--compression', 'xz'], '.squashfs'],
  ] as const) {
    test.serial(`${label}: fingerprint is sha256(metadata tarball + rootfs); the rootfs is unpacked where a create needs it`, async (t) => {
      const dir = out();
      env.ok(t, ['image', 'export', 'busybox', ...args, dir]);
      const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
      const meta = files.find((f) => path.basename(f).startsWith('meta-'))!;
      const root = files.find((f) => f !== meta)!;
      t.true(root.endsWith(rootExt));
      const fp = sha(meta, root);
      const e = new TestEnv('img3');
      try {
        e.ok(t, ['image', 'import', meta, root, '--alias', 'x']);
        t.is(images(e)[0].fingerprint, fp);
        t.false(fs.existsSync(`${e.paths.stateDir}/images/${fp}/rootfs`));
        t.false(JSON.parse(e.ok(t, ['image', 'info', 'x', '-f', 'json'])).unpacked);
        // A dir pool unpacks the rootfs file straight into the container, leaving the store packed.
        e.ok(t, ['storage', 'create', 'plain', 'dir', 'spare_roots=false']);
        e.ok(t, ['create', 'x', 'd1', '-s', 'plain']);
        t.true(fs.statSync(`${e.paths.stateDir}/containers/d1/rootfs/bin/busybox`).isFile());
        t.deepEqual(fs.readdirSync(`${e.paths.stateDir}/containers/d1`).sort(), ['config.yaml', 'rootfs', 'storage.yaml']);
        t.false(fs.existsSync(`${e.paths.stateDir}/images/${fp}/rootfs`));
        // The default (overlay) pool needs the tree in the store.
        e.ok(t, ['create', 'x', 'c1']);
        t.true(fs.existsSync(`${e.paths.stateDir}/images/${fp}/rootfs/bin/busybox`));
        t.true(fs.existsSync(`${e.paths.stateDir}/containers/c1`));
        const d2 = out();
        e.ok(t, ['image', 'export', 'x', d2]);
        const f2 = fs.readdirSync(d2).map((f) => path.join(d2, f));
        t.is(
          sha(
            f2.find((f) => path.basename(f).startsWith('meta-'))!,
            f2.find((f) => !path.basename(f).startsWith('meta-'))!,
          ),
          fp,
        );
      } finally {
        await e.cleanup();
      }
    });
  }

  test.serial('aliases: create, rename, delete, list; unique prefixes; unknown names are one line', (t) => {
    const fp = images(env)[0].fingerprint;
    env.ok(t, ['image', 'alias', 'create', 'mine', fp.slice(0, 5)]);
    env.ok(t, ['image', 'alias', 'rename', 'mine', 'ours']);
    const list = JSON.parse(env.ok(t, ['image', 'alias', 'list', '--format', 'json']));
    t.truthy(list.find((a: { alias: string; fingerprint: string }) => a.alias === 'ours' && a.fingerprint === fp));
    t.falsy(list.find((a: { alias: string }) => a.alias === 'mine'));
    const dup = env.cli(['image', 'alias', 'create', 'ours', fp]);
    t.not(dup.code, 0);
    t.regex(dup.stderr, /already exists/);
    env.ok(t, ['image', 'alias', 'delete', 'ours']);
    t.regex(env.ok(t, ['image', 'show', fp.slice(0, 3)]), /architecture: x86_64/);
    const missing = env.cli(['image', 'info', 'no-such-image']);
    t.not(missing.code, 0);
    t.is(missing.stderr.trim().split('\n').length, 1);
  });

  test.serial('edit replaces the metadata (checked); info and show reflect it', (t) => {
    const doc = env.ok(t, ['image', 'show', 'busybox']).replace(/description: .*/, 'description: edited by the test');
    env.ok(t, ['image', 'edit', 'busybox'], { input: doc });
    t.is(JSON.parse(env.ok(t, ['image', 'info', 'busybox', '-f', 'json'])).description, 'edited by the test');
    const bad = env.cli(['image', 'edit', 'busybox'], { input: 'architecture: [1, 2]\n' });
    t.not(bad.code, 0);
    t.regex(bad.stderr, /architecture/);
    t.is(JSON.parse(env.ok(t, ['image', 'info', 'busybox', '-f', 'json'])).description, 'edited by the test');
  });

  test.serial('delete is refused while a container uses the image; --force says what it also removes', (t) => {
    const fp = images(other).find((i) => i.aliases.includes('bb'))!.fingerprint;
    const r = other.cli(['image', 'delete', 'bb']);
    t.not(r.code, 0);
    t.regex(r.stderr, /container c1 uses it/);
    t.true(fs.existsSync(`${other.paths.stateDir}/images/${fp}`));
    const f = other.ok(t, ['image', 'delete', 'bb', '--force']);
    t.regex(f, /also deleted container c1/);
    t.false(fs.existsSync(`${other.paths.stateDir}/images/${fp}`));
    t.false(fs.existsSync(`${other.paths.stateDir}/containers/c1`));
  });

  test.serial("an LXD image's instance templates are rendered at create, copy and rename; ones with control flow are skipped", (t) => {
    const md =
      'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: tpl\ntemplates:\n  /etc/motd:\n    when: [create, copy]\n    template: motd.tpl\n    properties:\n      greeting: hello\n  /etc/cloud.cfg:\n    when: [create]\n    template: cloud.tpl\n  /etc/later:\n    when: [rename]\n    template: motd.tpl\n';
    const file = path.join(out(), 'tpl.tar.gz');
    fs.writeFileSync(
      file,
      makeTarGz([
        { name: 'metadata.yaml', content: md },
        { name: 'rootfs/', type: '5' },
        { name: 'rootfs/etc/', type: '5' },
        { name: 'templates/', type: '5' },
        { name: 'templates/motd.tpl', content: '{{ properties.greeting }} from {{ container.name }} ({{ trigger }})\n' },
        { name: 'templates/cloud.tpl', content: '{% if config_get("user.x") %}x{% endif %}\n' },
      ]),
    );
    env.ok(t, ['image', 'import', file, '--alias', 'tpl']);
    t.deepEqual(JSON.parse(env.ok(t, ['image', 'info', 'tpl', '-f', 'json'])).templates, ['/etc/motd', '/etc/cloud.cfg', '/etc/later']);
    env.ok(t, ['create', 'tpl', 'tpl1']);
    const upper = `${env.paths.stateDir}/containers/tpl1/rootfs`;
    t.is(fs.readFileSync(`${upper}/etc/motd`, 'utf8'), 'hello from tpl1 (create)\n');
    t.false(fs.existsSync(`${upper}/etc/cloud.cfg`));
    t.false(fs.existsSync(`${upper}/etc/later`));
    // copy renders the copy templates for the new name; rename the rename ones.
    env.ok(t, ['copy', 'tpl1', 'tpl2']);
    t.is(fs.readFileSync(`${env.paths.stateDir}/containers/tpl2/rootfs/etc/motd`, 'utf8'), 'hello from tpl2 (copy)\n');
    env.ok(t, ['rename', 'tpl2', 'tpl3']);
    t.is(fs.readFileSync(`${env.paths.stateDir}/containers/tpl3/rootfs/etc/later`, 'utf8'), ' from tpl3 (rename)\n');
    env.ok(t, ['delete', 'tpl1', 'tpl3']);
    env.ok(t, ['image', 'delete', 'tpl']);
  });

  // Each hostile or broken archive: one clear line, nothing in the store, nothing outside it.
  const meta: TarEntry = { name: 'metadata.yaml', content: 'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: evil\n' };
  const root: TarEntry = { name: 'rootfs/', type: '5' };
  const outside = () => path.join(env.root, 'pwned');
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['an entry with ".."', () => makeTarGz([meta, root, { name: 'rootfs/../../pwned', content: 'x' }]), /contains "\.\."/],
    ['an absolute entry', () => makeTarGz([meta, root, { name: outside(), content: 'x' }]), /absolute path/],
    [
      'a symlink out of the root',
      () => makeTarGz([meta, root, { name: 'rootfs/esc', type: '2', link: '../../..' + env.root }, { name: 'rootfs/esc/pwned', content: 'x' }]),
      /(outside the root|under the symlink)/,
    ],
    [
      'a file through an absolute symlink',
      () => makeTarGz([meta, root, { name: 'rootfs/esc', type: '2', link: env.root }, { name: 'rootfs/esc/pwned', content: 'x' }]),
      /under the symlink/,
    ],
    [
      'a hard link to a host file',
      () => makeTarGz([meta, root, { name: 'rootfs/shadow', type: '1', link: '/etc/shadow' }]),
      /absolute path|outside the archive/,
    ],
    [
      'a block device',
      () => makeTarGz([meta, root, { name: 'rootfs/dev/', type: '5' }, { name: 'rootfs/dev/sda', type: '4', major: 8, minor: 0 }]),
      /block device/,
    ],
    [
      'a char device outside /dev',
      () => makeTarGz([meta, root, { name: 'rootfs/etc/', type: '5' }, { name: 'rootfs/etc/mem', type: '3', major: 1, minor: 1 }]),
      /character device outside \/dev/,
    ],
    ['an unexpected top-level entry', () => makeTarGz([meta, root, { name: 'etc/passwd', content: 'x' }]), /unexpected entry/],
    ['no metadata.yaml', () => makeTarGz([root, { name: 'rootfs/a', content: 'x' }]), /no metadata\.yaml/],
    ['invalid metadata.yaml', () => makeTarGz([{ name: 'metadata.yaml', content: '- just\n- a list\n' }, root]), /Invalid metadata\.yaml.*mapping/],
    ['metadata.yaml that is not YAML', () => makeTarGz([{ name: 'metadata.yaml', content: 'a: [\n' }, root]), /Invalid metadata\.yaml/],
    ['random bytes', () => crypto.randomBytes(5000), /corrupt, truncated or not a tar archive/],
    [
      'a truncated tarball',
      () => makeTarGz([meta, root, { name: 'rootfs/big', content: crypto.randomBytes(200_000) }]).subarray(0, 20_000),
      /corrupt, truncated/,
    ],
  ];
  for (const [label, make, why] of cases) {
    test.serial(`import refuses ${label}`, (t) => {
      const file = path.join(out(), 'evil.tar.gz');
      fs.writeFileSync(file, make());
      const before = storeDirs(env);
      const r = env.cli(['image', 'import', file, '--alias', 'evil']);
      t.not(r.code, 0);
      t.regex(r.stderr, why);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.deepEqual(storeDirs(env), before);
      t.false(fs.existsSync(outside()));
      t.false(fs.existsSync(path.join(path.dirname(env.root), 'pwned')));
      t.falsy(images(env).find((i) => i.aliases.includes('evil')));
    });
  }
}
