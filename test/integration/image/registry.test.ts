import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';

/** A registry on 127.0.0.1 (a child process, stopped by its PID): push and pull move only missing nodes. */
if (requireRoot(test)) {
  const a = new TestEnv('reg-a');
  const b = new TestEnv('reg-b');
  let child: ChildProcess | undefined;
  let url = '';
  const info = (e: TestEnv, ref: string) => JSON.parse(e.cli(['image', 'info', ref, '-f', 'json']).stdout);

  test.before(async () => {
    const r = a.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const recipe = path.join(a.root, 'bb-child.yaml');
    fs.writeFileSync(recipe, 'name: bb-child\nfrom: busybox\nfiles:\n  - path: /etc/child\n    content: "child\\n"\n');
    const c = a.cli(['image', 'build', recipe]);
    if (c.code !== 0) throw new Error(c.stderr);
    child = spawn(process.execPath, [cliPath, 'registry', 'serve', '--dir', path.join(a.root, 'registry'), '--listen', '127.0.0.1:0'], {
      env: a.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d) => {
        out += d;
        const m = /on (127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(`http://${m[1]}`);
      });
      child!.on('exit', (code) => reject(new Error(`registry exited ${code}`)));
      setTimeout(() => reject(new Error('registry did not start')), 15_000);
    });
  });
  test.serial.after.always(async () => {
    if (child?.pid && child.exitCode === null) {
      process.kill(child.pid, 'SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await a.cleanup();
    await b.cleanup();
  });

  test.serial('push sends the image and its missing ancestors, then only what is new', (t) => {
    const first = a.ok(t, ['image', 'push', 'bb-child', url]);
    t.regex(first, /Pushed 2 nodes \((\d+) bytes.*0 already in the registry/);
    // A child node is its layer: its blob is a fraction of its parent's.
    const nodes = JSON.parse(fs.readFileSync(path.join(a.root, 'registry', 'nodes', `${info(a, 'bb-child').fingerprint}.json`), 'utf8'));
    const root = JSON.parse(fs.readFileSync(path.join(a.root, 'registry', 'nodes', `${info(a, 'busybox').fingerprint}.json`), 'utf8'));
    t.true(nodes.size * 10 < root.size, `child blob ${nodes.size} B, parent blob ${root.size} B`);
    t.regex(a.ok(t, ['image', 'push', 'busybox', url]), /Pushed 0 nodes \(0 bytes.*1 already/);
    t.regex(a.ok(t, ['image', 'push', 'bb-child', url]), /Pushed 0 nodes \(0 bytes.*2 already/);
  });

  test.serial('pull fetches the missing nodes with their fingerprints and parent links', (t) => {
    t.regex(b.ok(t, ['image', 'pull', url, 'bb-child', '--alias', 'kid']), /Pulled 2 nodes.*0 already in the store/);
    const kid = info(b, 'kid');
    t.is(kid.fingerprint, info(a, 'bb-child').fingerprint);
    t.is(kid.parent.fingerprint, info(a, 'busybox').fingerprint);
    t.true(fs.existsSync(`${b.paths.stateDir}/images/${kid.fingerprint}/rootfs/etc/child`));
    t.is(kid.stored, 'layer', 'a pulled layer stays a layer');
    // A new child in A: push moves one node, pull moves one node.
    a.ok(t, ['create', 'bb-child', 'p1']);
    a.ok(t, ['publish', 'p1', '--alias', 'grandchild']);
    const pushed = a.ok(t, ['image', 'push', 'grandchild', url]);
    t.regex(pushed, /Pushed 1 node \(.*2 already/);
    t.true(
      Number(/\((\d+) bytes/.exec(pushed)?.[1]) * 10 <
        JSON.parse(fs.readFileSync(path.join(a.root, 'registry', 'nodes', `${info(a, 'busybox').fingerprint}.json`), 'utf8')).size,
      'only the new layer moved',
    );
    t.regex(b.ok(t, ['image', 'pull', url, 'grandchild']), /Pulled 1 node .*2 already in the store/);
    // The pulled stack makes a container that sees every layer's change.
    b.ok(t, ['launch', 'grandchild', 'g1']);
    t.is(b.ok(t, ['exec', 'g1', '--', 'sh', '-c', 'cat /etc/child; test -x /bin/busybox && echo base']), 'child\nbase\n');
    const tree = b.ok(t, ['image', 'tree']);
    t.regex(tree, /busybox[\s\S]*kid[\s\S]*grandchild/);
    const missing = b.cli(['image', 'pull', url, 'nope']);
    t.not(missing.code, 0);
    t.regex(missing.stderr, /not found in the registry/);
  });
}
