import fs from 'node:fs';
import test from 'ava';
import yaml from 'js-yaml';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * create and launch take a fast path without yargs (lib/cli/fast.ts) from the same option table:
 * the same arguments make the same container either way (--debug sends them through yargs).
 */
if (requireRoot(test)) {
  const env = new TestEnv('fastcreate');
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  leftoverHooks(test, env);
  const config = (name: string) => {
    const c = yaml.load(fs.readFileSync(`${env.paths.stateDir}/containers/${name}/config.yaml`, 'utf8')) as Record<string, unknown>;
    delete c.name;
    delete c.created_at;
    return c;
  };

  test.serial('every option means the same on the fast path and through yargs', (t) => {
    env.ok(t, ['profile', 'create', 'extra']);
    const opts = [
      '--hostname',
      'same-host',
      '--env',
      'A=1',
      '--env=B=2',
      '--init',
      '/sbin/init',
      '-s',
      'default',
      '-p',
      'default',
      '--profile',
      'extra',
      '-c',
      'limits.memory=64MiB',
      '--config=limits.cpu=1',
    ];
    env.ok(t, ['create', 'busybox', 'fast1', ...opts]);
    env.ok(t, ['create', 'busybox', 'slow1', ...opts, '--debug']);
    t.deepEqual(config('fast1'), config('slow1'));
    t.like(config('fast1'), {
      hostname: 'same-host',
      environment: { A: '1', B: '2' },
      profiles: ['default', 'extra'],
      config: { 'limits.memory': '64MiB', 'limits.cpu': '1' },
    });
    env.ok(t, ['launch', 'busybox', 'fast2', '-c', 'limits.memory=64MiB']);
    t.is(env.ok(t, ['exec', 'fast2', '--', 'hostname']), 'fast2\n');
    env.ok(t, ['delete', '--force', 'fast1', 'slow1', 'fast2']);
  });

  test.serial('what the fast path does not take goes to yargs, with its usage errors', (t) => {
    const missing = env.cli(['launch', 'busybox']);
    t.is(missing.code, 2);
    t.regex(missing.stderr, /see "tslxc launch --help"/);
    const unknown = env.cli(['create', 'busybox', 'u1', '--nosuch']);
    t.is(unknown.code, 2);
    t.regex(unknown.stderr, /nosuch/);
    const bad = env.cli(['create', 'busybox', 'u1', '-c', 'nokeyvalue']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /^Error: Invalid config key "nokeyvalue": expected KEY=VALUE$/m);
    const badName = env.cli(['launch', 'busybox', 'Bad_Name']);
    t.is(badName.code, 1);
    t.regex(badName.stderr, /^Error: Invalid container name "Bad_Name"/m);
    t.false(fs.existsSync(`${env.paths.stateDir}/containers/u1`));
  });
}
