import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { cliPath, launcherPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { makeTarGz } from '../../helpers/tarball.js';

/**
 * The import's one pass, each way it can go: started by bin/tslxc's native front before node and
 * adopted by node (the front uses the plan the previous import wrote), node's own through the
 * helper, and node's own processes without the helper. Each gives the same image, refuses the
 * same archives, and leaves nothing behind, killed or not.
 */
if (requireRoot(test)) {
  const env = new TestEnv('ipass');
  let tarball = '';
  let fp = '';
  const leftovers = (e: TestEnv) => {
    const dir = `${e.paths.stateDir}/images`;
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith('.')) : [];
  };
  /** The CLI as users run it (the launcher), or node directly; with TSLXC_PLAN_DEBUG=1, which says which pass ran. */
  const run = (e: TestEnv, args: string[], how: 'launcher' | 'node' = 'launcher', extra: NodeJS.ProcessEnv = {}) => {
    const [cmd, argv] = how === 'launcher' ? [launcherPath, args] : [process.execPath, [cliPath, ...args]];
    const r = spawnSync(cmd, argv, { env: { ...e.env, TSLXC_PLAN_DEBUG: '1', ...extra }, encoding: 'utf8', timeout: 120_000 });
    const pass = /tslxc: import pass: (\w+)/.exec(r.stderr ?? '')?.[1];
    // When the tar walker leaves an archive to tar, why.
    const byTar = /tslxc: import listing: tar \((.*)\)/.exec(r.stderr ?? '')?.[1];
    const stderr = (r.stderr ?? '').replace(/^tslxc: import pass: \w+\n/m, '').replace(/^tslxc: import listing: .*\n/m, '');
    return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr, pass, byTar };
  };

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    tarball = path.join(env.root, 'busybox.tar.gz');
    const x = env.cli(['image', 'export', 'busybox', tarball]);
    if (x.code !== 0) throw new Error(x.stderr);
    fp = crypto.createHash('sha256').update(fs.readFileSync(tarball)).digest('hex');
  });
  test.serial.after.always(() => env.cleanup());

  test.serial('each way of running the pass gives the same image: the front adopted, the helper from node, node alone', async (t) => {
    const e = new TestEnv('ipass1');
    try {
      const ways: [string, 'launcher' | 'node', NodeJS.ProcessEnv][] = [
        // No plan in the run dir yet: node runs the helper's pass, and writes the plan.
        ['helper', 'launcher', {}],
        ['front', 'launcher', {}],
        ['helper', 'node', {}],
        ['node', 'node', { TSLXC_HELPER: path.join(e.root, 'no-helper') }],
      ];
      for (const [want, how, extra] of ways) {
        const r = run(e, ['image', 'import', tarball, '--alias', 'bb'], how, extra);
        t.is(r.code, 0, r.stderr);
        t.is(r.pass, want, `${how} ${JSON.stringify(extra)}`);
        t.is(r.byTar, undefined, 'the walker listed it');
        t.regex(r.stdout, new RegExp(`Imported image: ${fp}`));
        const dir = `${e.paths.stateDir}/images/${fp}`;
        t.deepEqual(fs.readdirSync(dir).sort(), ['metadata.yaml', 'original']);
        t.true(fs.readFileSync(path.join(dir, 'original', 'meta.tar.gz')).equals(fs.readFileSync(tarball)));
        t.regex(fs.readFileSync(path.join(dir, 'metadata.yaml'), 'utf8'), /architecture:/);
        t.deepEqual(leftovers(e), []);
        e.ok(t, ['image', 'delete', 'bb']);
      }
      // Templates come from the head of the archive (no second tar), hard-linked ones by tar.
      const withTemplates = path.join(e.root, 'tpl.tar.gz');
      const meta =
        'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: t\ntemplates:\n  /etc/hostname:\n    when: [create]\n    template: hostname.tpl\n  /etc/motd:\n    when: [create]\n    template: motd.tpl\n';
      fs.writeFileSync(
        withTemplates,
        makeTarGz([
          { name: 'metadata.yaml', content: meta },
          { name: 'templates/', type: '5' },
          { name: 'templates/hostname.tpl', content: '{{ container.name }}\n' },
          { name: 'templates/motd.tpl', type: '1', link: 'templates/hostname.tpl' },
          { name: 'rootfs/', type: '5' },
          { name: 'rootfs/etc/', type: '5' },
        ]),
      );
      const r = run(e, ['image', 'import', withTemplates, '--alias', 'tpl']);
      t.is(r.code, 0, r.stderr);
      t.is(r.pass, 'front');
      const tfp = crypto.createHash('sha256').update(fs.readFileSync(withTemplates)).digest('hex');
      const tdir = `${e.paths.stateDir}/images/${tfp}/templates`;
      t.is(fs.readFileSync(path.join(tdir, 'hostname.tpl'), 'utf8'), '{{ container.name }}\n');
      t.is(fs.readFileSync(path.join(tdir, 'motd.tpl'), 'utf8'), '{{ container.name }}\n');
      t.deepEqual(leftovers(e), []);
    } finally {
      await e.cleanup();
    }
  });

  test.serial('an archive the walker leaves to tar (a sparse file) is listed by tar and imported', async (t) => {
    const e = new TestEnv('ipass4');
    try {
      const src = path.join(e.root, 'sparse');
      fs.mkdirSync(path.join(src, 'rootfs'), { recursive: true });
      fs.writeFileSync(path.join(src, 'metadata.yaml'), 'architecture: x86_64\ncreation_date: 1700000000\n');
      const fd = fs.openSync(path.join(src, 'rootfs', 'holes'), 'w');
      fs.writeSync(fd, 'data', 1 << 20);
      fs.closeSync(fd);
      const sparse = path.join(e.root, 'sparse.tar.gz');
      const mk = spawnSync('sh', ['-c', 'tar --format=gnu -S -C "$1" -czf "$2" metadata.yaml rootfs', 'sh', src, sparse]);
      t.is(mk.status, 0, String(mk.stderr));
      for (const how of ['launcher', 'launcher', 'node'] as const) {
        const r = run(e, ['image', 'import', sparse, '--alias', 'sp'], how);
        t.is(r.code, 0, r.stderr);
        t.regex(r.byTar ?? '', /type 'S'/);
        t.regex(r.stdout, /Imported image: [0-9a-f]{64}/);
        t.deepEqual(leftovers(e), []);
        e.ok(t, ['image', 'delete', 'sp']);
      }
    } finally {
      await e.cleanup();
    }
  });

  test.serial("the front's pass refuses what node's refuses, in one line, and leaves nothing", async (t) => {
    const e = new TestEnv('ipass2');
    try {
      t.is(run(e, ['image', 'import', tarball, '--alias', 'bb']).code, 0);
      const evil = path.join(e.root, 'evil.tar.gz');
      fs.writeFileSync(
        evil,
        makeTarGz([
          { name: 'metadata.yaml', content: 'architecture: x86_64\ncreation_date: 1700000000\n' },
          { name: 'rootfs/', type: '5' },
          { name: 'rootfs/etc', type: '2', link: '../../../etc' },
        ]),
      );
      const truncated = path.join(e.root, 'truncated.tar.gz');
      fs.writeFileSync(truncated, fs.readFileSync(tarball).subarray(0, 3000));
      const cases: [string[], RegExp][] = [
        [['image', 'import', evil, '--alias', 'evil'], /^Error: Refusing evil\.tar\.gz: symlink "rootfs\/etc" points outside/],
        [['image', 'import', truncated], /^Error: Cannot read truncated\.tar\.gz: /],
        [['image', 'import', tarball, '--alias', 'bad//alias'], /Invalid image name/],
      ];
      for (const [args, why] of cases) {
        for (const how of ['launcher', 'node'] as const) {
          const r = run(e, args, how);
          t.not(r.code, 0);
          // A refused alias is refused before any pass is used (the front's is discarded).
          t.is(r.pass, args.includes('bad//alias') ? undefined : how === 'launcher' ? 'front' : 'helper');
          t.regex(r.stderr, why);
          t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
          t.deepEqual(leftovers(e), [], `${how} ${args.join(' ')}`);
        }
      }
      t.is(fs.readdirSync(`${e.paths.stateDir}/images`).filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 1);
    } finally {
      await e.cleanup();
    }
  });

  test.serial('a killed import leaves no process of its pass, and the next import removes its stage dir', async (t) => {
    const e = new TestEnv('ipass3');
    try {
      t.is(run(e, ['image', 'import', tarball, '--alias', 'bb']).code, 0);
      // A tarball whose pass takes a while: a large file of zeros, small compressed (4 GiB: the
      // walker inflates 1 GiB of zeros in a fraction of a second).
      const src = path.join(e.root, 'big');
      fs.mkdirSync(path.join(src, 'rootfs'), { recursive: true });
      fs.writeFileSync(path.join(src, 'metadata.yaml'), 'architecture: x86_64\ncreation_date: 1700000000\n');
      fs.closeSync(fs.openSync(path.join(src, 'rootfs', 'zeros'), 'w'));
      fs.truncateSync(path.join(src, 'rootfs', 'zeros'), 4 * 2 ** 30);
      const big = path.join(e.root, 'big.tar.gz');
      const mk = spawnSync('sh', ['-c', 'tar -C "$1" -cf - metadata.yaml rootfs | pigz -1 > "$2"', 'sh', src, big]);
      t.is(mk.status, 0, String(mk.stderr));
      const child = spawn(launcherPath, ['image', 'import', big, '--alias', 'big'], { env: e.env, stdio: 'ignore' });
      const imagesDir = `${e.paths.stateDir}/images`;
      const stage = () => fs.readdirSync(imagesDir).find((n) => n.startsWith('.tmp-import'));
      const until = Date.now() + 10_000;
      while (!stage() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      const name = stage();
      t.truthy(name, 'the pass started');
      // The launcher, the front and node are one process (each execs the next).
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      const holders = () =>
        fs.readdirSync('/proc').filter((pid) => {
          if (!/^\d+$/.test(pid)) return false;
          try {
            return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
              try {
                return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).includes(`${imagesDir}/${name}`);
              } catch {
                return false;
              }
            });
          } catch {
            return false;
          }
        });
      const by = Date.now() + 5_000;
      while (holders().length && Date.now() < by) await new Promise((r) => setTimeout(r, 20));
      t.deepEqual(holders(), [], 'no process of the pass is left');
      t.not(e.cli(['image', 'info', 'big']).code, 0, 'killed before it was stored');
      e.ok(t, ['image', 'delete', 'bb']);
      t.is(run(e, ['image', 'import', tarball, '--alias', 'bb']).code, 0);
      t.deepEqual(leftovers(e), []);
    } finally {
      await e.cleanup();
    }
  });
}
