import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';

/** The image tree: recipes built from: a parent, publish, tree, descendants, delete refusal. */
if (requireRoot(test)) {
  const env = new TestEnv('tree');
  const info = (ref: string) => {
    const r = env.cli(['image', 'info', ref, '--format', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const dir = env.cli(['storage', 'create', 'plain', 'dir']);
    if (dir.code !== 0) throw new Error(dir.stderr);
  });
  test.serial.after.always(async () => {
    await env.cleanup();
  });

  test.serial('a from: recipe builds on its parent and records it; init and stop signal are inherited', (t) => {
    const recipe = path.join(env.root, 'bb-extra.yaml');
    fs.writeFileSync(
      recipe,
      'name: bb-extra\ndescription: busybox plus a file\nfrom: busybox\nenvironment:\n  EXTRA: "1"\nfiles:\n  - path: /etc/extra\n    content: "extra\\n"\ncommands:\n  - echo built > /etc/built-by-recipe\n',
    );
    env.ok(t, ['image', 'build', recipe]);
    const child = info('bb-extra');
    const parent = info('busybox');
    t.is(child.parent.fingerprint, parent.fingerprint);
    t.deepEqual(child.parent.aliases.sort(), parent.aliases.sort());
    t.is(child.stop_signal, parent.stop_signal);
    t.deepEqual(child.init, parent.init);
    t.is(child.environment.EXTRA, '1');
    t.is(child.os, 'busybox');
    const root = `${env.paths.stateDir}/images/${child.fingerprint}/rootfs`;
    t.is(fs.readFileSync(`${root}/etc/extra`, 'utf8'), 'extra\n');
    t.is(fs.readFileSync(`${root}/etc/built-by-recipe`, 'utf8'), 'built\n');
    // A layer: only what the recipe changed; the parent's files come from the parent.
    t.is(child.stored, 'layer');
    t.false(fs.existsSync(`${root}/bin/busybox`));
    // Building again reuses it.
    env.ok(t, ['image', 'build', recipe]);
    t.is(info('bb-extra').fingerprint, child.fingerprint);
    // A recipe naming itself as its parent is an error, not a hang.
    const loop = path.join(env.root, 'loop.yaml');
    fs.writeFileSync(loop, 'name: loop\nfrom: ' + loop + '\n');
    const r = env.cli(['image', 'build', loop]);
    t.not(r.code, 0);
  });

  for (const pool of ['default', 'plain']) {
    test.serial(`publish from a ${pool === 'plain' ? 'dir' : 'default (overlay)'} pool: parent is the container's image, changes and deletions kept`, (t) => {
      const name = `pub-${pool}`;
      env.ok(t, ['launch', 'bb-extra', name, '--storage', pool]);
      env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo mine > /etc/mine && rm /etc/extra']);
      const live = env.cli(['publish', name]);
      t.not(live.code, 0);
      t.regex(live.stderr, /running.*--force/);
      // --force: frozen for the copy, running again afterwards.
      env.ok(t, ['publish', name, '--force', '--alias', `${name}-live`]);
      t.is(env.ok(t, ['exec', name, '--', 'cat', '/etc/mine']), 'mine\n');
      // A change after the live publish: the stopped one is another tree, so another node (the
      // same tree would be the same image: fingerprints name the content).
      env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo later > /etc/later']);
      env.ok(t, ['stop', name, '--force']);
      env.ok(t, ['publish', name, '--alias', `${name}-img`]);
      for (const a of [`${name}-live`, `${name}-img`]) {
        const img = info(a);
        t.is(img.parent.fingerprint, info('bb-extra').fingerprint);
        const root = `${env.paths.stateDir}/images/${img.fingerprint}/rootfs`;
        t.is(fs.readFileSync(`${root}/etc/mine`, 'utf8'), 'mine\n');
        const st = fs.lstatSync(`${root}/etc/extra`);
        t.true(st.isCharacterDevice() && st.rdev === 0, 'a deleted file stays deleted (a whiteout in the layer)');
        t.false(fs.existsSync(`${root}/proc/self`), 'no mounted filesystem is copied');
      }
      // A container of the published image boots and has the change.
      env.ok(t, ['launch', `${name}-img`, `${name}-2`, '--storage', pool]);
      t.is(env.ok(t, ['exec', `${name}-2`, '--', 'cat', '/etc/mine']), 'mine\n');
    });
  }

  test.serial('tree and descendants show every image and container derived from a node', (t) => {
    const tree = JSON.parse(env.ok(t, ['image', 'tree', '--format', 'json']));
    const bb = tree.find((n: { aliases: string[] }) => n.aliases.includes('busybox'));
    t.truthy(bb);
    const extra = bb.children.find((n: { aliases: string[] }) => n.aliases.includes('bb-extra'));
    t.deepEqual(extra.containers, ['pub-default', 'pub-plain']);
    t.is(extra.children.length, 4);
    const text = env.ok(t, ['image', 'tree']);
    t.regex(text, /busybox.*\n.*bb-extra.*2 containers \(pub-default, pub-plain\)/);
    t.regex(text, /pub-default-img .*1 container \(pub-default-2\)/);
    const d = JSON.parse(env.ok(t, ['image', 'descendants', 'busybox', '--format', 'json']));
    t.deepEqual(
      d
        .filter((r: { type: string }) => r.type === 'container')
        .map((r: { name: string }) => r.name)
        .sort(),
      ['pub-default', 'pub-default-2', 'pub-plain', 'pub-plain-2'],
    );
    t.is(d.filter((r: { type: string }) => r.type === 'image').length, 5);
    // The "which of my machines does this base affect?" answer is the same through a prefix.
    const fp = info('busybox').fingerprint;
    t.deepEqual(JSON.parse(env.ok(t, ['image', 'descendants', fp.slice(0, 10), '--format', 'json'])), d);
  });

  test.serial('delete of a node with descendants is refused naming them; --force removes the subtree and says so', (t) => {
    const r = env.cli(['image', 'delete', 'bb-extra']);
    t.not(r.code, 0);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.regex(r.stderr, /pub-default-img/);
    t.regex(r.stderr, /containers .*pub-default/);
    const img = info('pub-plain-img');
    const f = env.ok(t, ['image', 'delete', 'pub-plain-img', '--force']);
    t.regex(f, /also deleted container pub-plain-2/);
    t.false(fs.existsSync(`${env.paths.stateDir}/images/${img.fingerprint}`));
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/pub-plain-2`));
    t.true(fs.existsSync(`${env.paths.stateDir}/containers/pub-plain`));
    t.deepEqual(
      fs.readdirSync(`${env.paths.stateDir}/images`).filter((f) => f.startsWith('.')),
      [],
    );
  });
}
