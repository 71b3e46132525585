import fs from 'node:fs';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { tslxcStatus, type Listed } from '../../helpers/instances.js';
import { leftoverHooks } from '../../helpers/suite.js';

/** First-run set-up, autostart, host report, top and info on real busybox containers (no network). */
if (requireRoot(test)) {
  const env = new TestEnv('adm');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);

  test.serial('admin init --preseed sets default limits (validated first), records the choices', (t) => {
    // No networks: tests never make bridges of their own here.
    const seed =
      'storage_pools:\n- name: p0\n  driver: dir\nprofiles:\n- name: default\n  config:\n    limits.processes: "123"\n    limits.memory: 256MiB\n  devices: {}\n';
    env.ok(t, ['admin', 'init', '--preseed', '-'], { input: seed });
    t.regex(fs.readFileSync(`${env.paths.stateDir}/config.yaml`, 'utf8'), /initialized_at/);
    t.is(env.ok(t, ['profile', 'get', 'default', 'limits.processes']).trim(), '123');
    const bad = env.cli(['admin', 'init', '--preseed', '-'], { input: 'profiles:\n- name: default\n  config:\n    limits.memory: 1PB\n' });
    t.is(bad.code, 1);
    t.regex(bad.stderr, /limits.memory: the host has only/);
    t.is(env.ok(t, ['profile', 'get', 'default', 'limits.memory']).trim(), '256MiB', 'a refused preseed changes nothing');
    t.regex(env.cli(['admin', 'init']).stderr, /needs a terminal.*--auto or --preseed/);
  });

  test.serial('a preseed that fails part-way is undone: pools, new profiles and changed profiles', (t) => {
    // Valid on its face; the last profile names a pool that does not exist, which only applying finds.
    const seed = [
      'storage_pools:\n- name: p9\n  driver: dir',
      'profiles:',
      '- name: default\n  config:\n    limits.processes: "321"',
      '- name: fresh\n  config:\n    limits.processes: "10"',
      '- name: broken\n  devices:\n    data: {type: disk, path: /data, pool: nosuch, source: v1}',
    ].join('\n');
    const r = env.cli(['admin', 'init', '--preseed', '-'], { input: `${seed}\n` });
    t.is(r.code, 1);
    t.regex(r.stderr, /^Error: .*storage pool "nosuch" does not exist/);
    t.is(r.stderr.trim().split('\n').length, 1);
    t.is(env.ok(t, ['profile', 'get', 'default', 'limits.processes']).trim(), '123', 'the changed profile is back as it was');
    t.notRegex(env.ok(t, ['profile', 'list']), /\bfresh\b|\bbroken\b/);
    t.notRegex(env.ok(t, ['storage', 'list']), /\bp9\b/);
    t.false(fs.existsSync(`${env.paths.stateDir}/storage-pools/p9.yaml`));
    // The same check guards a plain profile change.
    const dev = env.cli(['profile', 'device', 'add', 'default', 'net0', 'nic', 'network=nosuchnet']);
    t.regex(dev.stderr, /network "nosuchnet" does not exist/);
  });

  test.serial('autostart starts boot.autostart containers by priority; info, top and host report', async (t) => {
    env.ok(t, ['create', 'busybox', 'as-low', '-c', 'boot.autostart=true', '-c', 'boot.autostart.priority=1']);
    env.ok(t, ['create', 'busybox', 'as-high', '-c', 'boot.autostart=true', '-c', 'boot.autostart.priority=9', '-c', 'boot.autostart.delay=1']);
    env.ok(t, ['create', 'busybox', 'as-off']);
    t.deepEqual(
      env
        .ok(t, ['autostart', '--list'])
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
      ['as-high', 'as-low'],
    );
    const t0 = Date.now();
    const out = env.ok(t, ['autostart']);
    t.true(Date.now() - t0 >= 1000, 'the delay after as-high was waited');
    t.deepEqual(out.trim().split('\n'), ['as-high: started', 'as-low: started']);
    const states = Object.fromEntries(JSON.parse(env.ok(t, ['list', '--format', 'json'])).map((c: Listed) => [c.name, tslxcStatus(c)]));
    t.deepEqual(states, { 'as-high': 'Running', 'as-low': 'Running', 'as-off': 'Created' });
    t.is(env.ok(t, ['autostart']).trim(), 'as-high: already running\nas-low: already running');

    const info = env.ok(t, ['info', 'as-high']);
    t.regex(info, /Limits: limits.memory=256MiB \(profile:default\), limits.processes=123 \(profile:default\)/);
    t.regex(info, /lxcfs: /);
    const top = JSON.parse(env.ok(t, ['top', '--once', '--format', 'json'])) as Array<{ name: string; processLimit?: number }>;
    t.deepEqual(top.map((r) => r.name).sort(), ['as-high', 'as-low']);
    t.is(top[0]!.processLimit, 123);

    const host = JSON.parse(env.ok(t, ['host', '--format', 'json']));
    t.true(host.cpu.count >= 1);
    t.true(host.memory.totalBytes > 0);
    t.regex(host.features.cgroup.version, /^v[12]$/);
    t.truthy(
      host.storage.find(
        (s: { name: string; driver?: string; path: string }) => s.name === 'p0' && s.driver === 'dir' && s.path === `${env.paths.stateDir}/storage-pools/p0`,
      ),
      JSON.stringify(host.storage),
    );
    t.is(typeof host.features.lxcfs.running, 'boolean');
    t.regex(env.ok(t, ['info', '--host']), /cgroups: v[12]/);
    env.ok(t, ['delete', '--force', 'as-high', 'as-low', 'as-off']);
  });
}
