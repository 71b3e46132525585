import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import type { BenchEnv } from '../../../bench/env.js';
import { LxdDaemon } from '../../../bench/lxd.js';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * The CLI as a client of a private LXD 5.0.2 daemon (bench/lxd.ts: its own LXD_DIR, a dir pool, no
 * network): `remote add` with LXD's token, then the container verbs on "lxd:NAME" with a
 * container made from tslxc's busybox image, exported in LXD's format and imported there.
 */
if (requireRoot(test)) {
  const env = new TestEnv('clientlxd');
  const lxd = new LxdDaemon({ root: env.root } as BenchEnv, '1GiB');
  // One dir pool is all this needs (no btrfs loop file).
  (lxd as { pools: LxdDaemon['pools'] }).pools = [{ name: 'client-dir', driver: 'dir' }];
  const log = (s: string) => process.stderr.write(`${s}\n`);

  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });

  test.serial.before(async () => {
    // npx puts node_modules/.bin first on the PATH, and its `nft` (@vercel/nft) is not nftables:
    // LXD runs `nft --version` at start and dies on that answer.
    process.env.PATH = (process.env.PATH ?? '')
      .split(':')
      .filter((d) => !d.includes('node_modules'))
      .join(':');
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    await lxd.start(log);
    await lxd.preseed();
    await lxd.lxcOk(['config', 'set', 'core.https_address', `127.0.0.1:${await freePort()}`]);
    const file = path.join(env.root, 'busybox.tar.gz');
    const e = env.cli(['image', 'export', 'busybox', file]);
    if (e.code !== 0) throw new Error(e.stderr);
    await lxd.lxcOk(['image', 'import', file, '--alias', 'bb']);
    fs.rmSync(file);
  });
  test.serial.after.always('stop LXD', async () => {
    for (const p of await lxd.cleanup(log)) log(`LXD cleanup: ${p}`);
  });
  leftoverHooks(test, env);

  const cli = (args: string[], input?: string) => env.cli(args, { input });

  test.serial('remote add with an LXD token; list shows protocol lxd', async (t) => {
    const out = (await lxd.lxcOk(['config', 'trust', 'add', '--name', 'tslxc-client'])).stdout.trim().split('\n').pop()!;
    const add = cli(['remote', 'add', 'lxd', out]);
    t.is(add.code, 0, add.stderr);
    t.regex(env.ok(t, ['remote', 'list']), /^lxd\s+https:\/\/127\.0\.0\.1:\d+\s+lxd$/m);
  });

  test.serial('launch, list, exec, file, config, snapshot, info, console log, stop, delete on LXD', async (t) => {
    t.regex(env.ok(t, ['launch', 'bb', 'lxd:c1']), /^Launched c1$/m);
    lxd.instances.add('c1');
    t.regex(env.ok(t, ['list', 'lxd:']), /^c1\s+RUNNING/m);
    t.is(JSON.parse(env.ok(t, ['list', 'lxd:', '--format', 'json']))[0].name, 'c1');
    t.is(cli(['exec', 'lxd:c1', '--', 'sh', '-c', 'exit 5']).code, 5);
    t.is(cli(['exec', 'lxd:c1', '--', 'cat'], 'to lxd\n').stdout, 'to lxd\n');
    const both = cli(['exec', 'lxd:c1', '--', 'sh', '-c', 'echo out; echo err >&2']);
    t.is(both.stdout, 'out\n');
    t.is(both.stderr, 'err\n');
    const pty = cli(['exec', '-t', 'lxd:c1', '--', 'stty', 'size']);
    t.is(pty.stdout.trim(), '24 80', pty.stderr);

    const f = path.join(env.root, 'to-lxd');
    fs.writeFileSync(f, 'file for lxd\n');
    env.ok(t, ['file', 'push', f, 'lxd:c1/root/to-lxd']);
    t.is(cli(['exec', 'lxd:c1', '--', 'cat', '/root/to-lxd']).stdout, 'file for lxd\n');
    const back = path.join(env.root, 'from-lxd');
    env.ok(t, ['file', 'pull', 'lxd:c1/root/to-lxd', back]);
    t.is(fs.readFileSync(back, 'utf8'), 'file for lxd\n');

    env.ok(t, ['config', 'set', 'lxd:c1', 'user.k', 'v']);
    t.regex(env.ok(t, ['config', 'show', 'lxd:c1']), /user\.k: v/);
    t.regex((await lxd.lxcOk(['config', 'get', 'c1', 'user.k'])).stdout, /^v$/m);
    env.ok(t, ['config', 'unset', 'lxd:c1', 'user.k']);
    t.notRegex(env.ok(t, ['config', 'show', 'lxd:c1']), /user\.k/);

    env.ok(t, ['snapshot', 'create', 'lxd:c1', 's1']);
    t.regex(env.ok(t, ['snapshot', 'list', 'lxd:c1']), /^s1\s/m);
    t.regex(env.ok(t, ['info', 'lxd:c1']), /^Status: RUNNING$/m);
    t.is(cli(['console', 'lxd:c1', '--show-log']).code, 0);
    env.ok(t, ['restart', 'lxd:c1', '--force']);
    env.ok(t, ['stop', 'lxd:c1', '--force']);
    env.ok(t, ['snapshot', 'restore', 'lxd:c1', 's1']);
    env.ok(t, ['snapshot', 'delete', 'lxd:c1', 's1']);
    env.ok(t, ['delete', 'lxd:c1']);
    t.is((await lxd.lxcOk(['list', '--format', 'csv', '-c', 'n'])).stdout.trim(), '');
  });
}
