import fs from 'node:fs';
import test from 'ava';
import yaml from 'js-yaml';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/** copy across pools and drivers (with snapshots unless --instance-only), move (rename, to another pool). */
if (requireRoot(test)) {
  const env = new TestEnv('cm');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const p = env.cli(['storage', 'create', 'bt', 'btrfs', 'size=300MiB']);
    if (p.code !== 0) throw new Error(p.stderr);
    env.cli(['storage', 'create', 'plain', 'dir']);
  });
  leftoverHooks(test, env);
  const cfgFile = (c: string) => `${env.paths.stateDir}/containers/${c}/config.yaml`;
  const readCfg = (c: string) => yaml.load(fs.readFileSync(cfgFile(c), 'utf8')) as { config: Record<string, string> };

  test.serial('copy overlay -> btrfs -> overlay (flat) -> dir: data, whiteouts, snapshots, new identity; --instance-only', (t) => {
    env.ok(t, ['launch', 'busybox', 'c1']);
    env.ok(t, [
      'exec',
      'c1',
      '--',
      'sh',
      '-c',
      'echo data > /root/s; rm /bin/vi; mkdir -p /etc/ssh; echo k > /etc/ssh/ssh_host_ed25519_key; echo c > /etc/ssh/sshd_config',
    ]);
    env.ok(t, ['stop', 'c1']);
    env.ok(t, ['snapshot', 'create', 'c1', 's0']);
    // What the network code keeps for a nic: a copy must not reuse it.
    const cfg = readCfg('c1');
    cfg.config['volatile.eth0.hwaddr'] = '00:16:3e:00:00:01';
    fs.writeFileSync(cfgFile('c1'), yaml.dump(cfg));
    env.ok(t, ['copy', 'c1', 'c2', '--storage', 'bt']);
    env.ok(t, ['copy', 'c2', 'c3', '-s', 'default']);
    env.ok(t, ['copy', 'c3', 'c4', '-s', 'plain']);
    env.ok(t, ['copy', 'c1', 'c5', '-s', 'plain', '--instance-only']);
    for (const c of ['c2', 'c3', 'c4', 'c5']) {
      // Nothing volatile is copied (a start then records its own: id map, addresses).
      t.false(
        Object.keys(readCfg(c).config).some((k) => k.startsWith('volatile.')),
        `${c}: no volatile keys`,
      );
      env.ok(t, ['start', c]);
      t.is(env.ok(t, ['exec', c, '--', 'cat', '/root/s', '/etc/hostname', '/etc/ssh/sshd_config']), `data\n${c}\nc\n`, c);
      t.not(env.cli(['exec', c, '--', 'test', '-e', '/bin/vi']).code, 0, `${c}: a deleted file stays deleted`);
      t.not(env.cli(['exec', c, '--', 'test', '-e', '/etc/ssh/ssh_host_ed25519_key']).code, 0, `${c}: no SSH host key of the source`);
      t.not(readCfg(c).config['volatile.eth0.hwaddr'], '00:16:3e:00:00:01', `${c}: not the source's MAC address`);
      env.ok(t, ['stop', c]);
    }
    t.deepEqual(
      JSON.parse(env.ok(t, ['snapshot', 'list', 'c4', '--format', 'json'])).map((s: { name: string }) => s.name),
      ['s0'],
    );
    t.deepEqual(JSON.parse(env.ok(t, ['snapshot', 'list', 'c5', '--format', 'json'])), []);
    env.ok(t, ['start', 'c3']);
    env.ok(t, ['exec', 'c3', '--', 'sh', '-c', 'echo later > /root/s']);
    env.ok(t, ['stop', 'c3']);
    env.ok(t, ['snapshot', 'restore', 'c3', 's0']);
    env.ok(t, ['start', 'c3']);
    t.is(env.ok(t, ['exec', 'c3', '--', 'cat', '/root/s']), 'data\n', 'a copied snapshot restores');
    env.ok(t, ['delete', '--force', 'c2', 'c3', 'c4', 'c5']);
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/storage-pools/bt/containers`), []);
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/storage-pools/bt/snapshots`), []);
  });

  test.serial('move: a rename on one pool; --storage moves pools keeping the identity and snapshots', (t) => {
    env.ok(t, ['file', 'pull', 'c1/etc/machine-id', `${env.root}/mid`]);
    const mid = fs.readFileSync(`${env.root}/mid`, 'utf8');
    env.ok(t, ['move', 'c1', '--storage', 'bt']);
    t.is((yaml.load(fs.readFileSync(`${env.paths.stateDir}/containers/c1/storage.yaml`, 'utf8')) as { pool: string }).pool, 'bt');
    t.is(readCfg('c1').config['volatile.eth0.hwaddr'], '00:16:3e:00:00:01', 'a move keeps the MAC');
    env.ok(t, ['move', 'c1', 'm1']);
    env.ok(t, ['move', 'm1', '-s', 'plain']);
    env.ok(t, ['start', 'm1']);
    t.is(env.ok(t, ['exec', 'm1', '--', 'cat', '/root/s', '/etc/hostname', '/etc/machine-id']), `data\nm1\n${mid}`);
    t.deepEqual(
      JSON.parse(env.ok(t, ['snapshot', 'list', 'm1', '--format', 'json'])).map((s: { name: string }) => s.name),
      ['s0'],
    );
    t.regex(env.cli(['move', 'm1', '-s', 'bt']).stderr, /running/);
    // A running container is copied frozen, and goes on running.
    env.ok(t, ['exec', 'm1', '--', 'sh', '-c', 'echo live > /root/s']);
    env.ok(t, ['copy', 'm1', 'm2', '-s', 'bt', '--instance-only']);
    t.is(JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((c: { name: string }) => c.name === 'm1')?.status, 'Running');
    env.ok(t, ['start', 'm2']);
    t.is(env.ok(t, ['exec', 'm2', '--', 'cat', '/root/s']), 'live\n');
    env.ok(t, ['delete', '--force', 'm2']);
    env.ok(t, ['delete', '--force', 'm1']);
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/containers`), []);
    t.deepEqual(fs.readdirSync(`${env.paths.stateDir}/storage-pools/bt/containers`), []);
    env.ok(t, ['storage', 'delete', 'bt']);
    env.ok(t, ['storage', 'delete', 'plain']);
  });
}
