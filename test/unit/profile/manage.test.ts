import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Context } from '../../../lib/state/context.js';
import { saveConfig, loadConfig, type InstanceConfig } from '../../../lib/state/config.js';
import { setConfig, setProfiles, showConfig, unsetConfig } from '../../../lib/instance/configure.js';
import {
  copyProfile,
  createProfile,
  deleteProfile,
  loadProfile,
  renameProfile,
  replaceProfileFromYaml,
  setProfileKeys,
  unsetProfileKeys,
  usedBy,
} from '../../../lib/instance/profiles.js';

/** Profiles and container config on disk, with no container running (no root needed). */
function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-profile-'));
  const paths = { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'tslxc-unit-none' };
  fs.mkdirSync(path.join(paths.stateDir, 'containers', 'c1'), { recursive: true });
  const cfg: InstanceConfig = {
    name: 'c1',
    status: 'created',
    created_at: new Date().toISOString(),
    hostname: 'c1',
    image: { fingerprint: 'f'.repeat(64), alias: 'busybox', os: 'busybox' },
    init: ['/sbin/init'],
    stop_signal: 'SIGUSR2',
    environment: {},
    profiles: ['small'],
    config: {},
    devices: {},
  };
  const ctx = new Context(paths);
  saveConfig(paths, cfg);
  return { ctx, root, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

test('create, set, unset, copy, rename (containers follow), delete (refused in use)', async (t) => {
  const { ctx, cleanup } = setup();
  t.teardown(cleanup);
  await createProfile(ctx, 'p1', { description: 'mine' });
  await setProfileKeys(ctx, 'p1', { 'limits.memory': '64MiB', 'user.x': 'y' });
  t.deepEqual(loadProfile(ctx.paths, 'p1').config, { 'limits.memory': '64MiB', 'user.x': 'y' });
  await t.throwsAsync(setProfileKeys(ctx, 'p1', { 'limits.memory': '128MiB', 'limits.nope': '1' }), { message: /Unknown config key "limits.nope"/ });
  t.is(loadProfile(ctx.paths, 'p1').config['limits.memory'], '64MiB', 'a refused change applies nothing');
  await unsetProfileKeys(ctx, 'p1', ['user.x']);
  t.deepEqual(loadProfile(ctx.paths, 'p1').config, { 'limits.memory': '64MiB' });
  await t.throwsAsync(createProfile(ctx, 'p1'), { message: /already exists/ });
  await copyProfile(ctx, 'p1', 'p2');
  t.deepEqual(loadProfile(ctx.paths, 'p2').config, { 'limits.memory': '64MiB' });

  await setProfiles(ctx, 'c1', { add: 'p1' });
  t.deepEqual(usedBy(ctx, 'p1'), ['c1']);
  await t.throwsAsync(deleteProfile(ctx, 'p1'), { message: /used by 1 container\(s\): c1/ });
  await renameProfile(ctx, 'p1', 'p3');
  t.deepEqual(loadConfig(ctx.paths, 'c1').profiles, ['small', 'p3']);
  t.throws(() => loadProfile(ctx.paths, 'p1'), { message: /not found/ });
  await t.throwsAsync(renameProfile(ctx, 'small', 'tiny'), { message: /built-in/ });
  await setProfiles(ctx, 'c1', { remove: 'p3' });
  await deleteProfile(ctx, 'p3');
  await t.throwsAsync(deleteProfile(ctx, 'medium'), { message: /built-in/ });
});

test('editing validates the whole YAML before saving', async (t) => {
  const { ctx, cleanup } = setup();
  t.teardown(cleanup);
  await createProfile(ctx, 'e1');
  await t.throwsAsync(replaceProfileFromYaml(ctx, 'e1', 'config:\n  limits.memory: 12 parsecs\n'), { message: /limits.memory/ });
  await t.throwsAsync(replaceProfileFromYaml(ctx, 'e1', 'colour: blue\n'), { message: /unknown key "colour"/ });
  await t.throwsAsync(replaceProfileFromYaml(ctx, 'e1', 'config: [\n'), { message: /Invalid YAML/ });
  await replaceProfileFromYaml(ctx, 'e1', 'description: edited\nconfig:\n  limits.processes: 50\ndevices:\n  eth0:\n    type: none\n');
  const p = loadProfile(ctx.paths, 'e1');
  t.is(p.description, 'edited');
  t.deepEqual(p.config, { 'limits.processes': '50' });
  t.deepEqual(p.devices, { eth0: { type: 'none' } });
});

test('container config: set, unset, expanded sources, profile order', async (t) => {
  const { ctx, cleanup } = setup();
  t.teardown(cleanup);
  await setConfig(ctx, 'c1', { 'limits.memory': '100MiB' });
  await t.throwsAsync(setConfig(ctx, 'c1', { 'limits.processes': '10', 'limits.cpu': '99' }), { message: /limits.cpu/ });
  t.deepEqual(loadConfig(ctx.paths, 'c1').config, { 'limits.memory': '100MiB' }, 'nothing of a refused change is saved');
  await createProfile(ctx, 'procs', { config: { 'limits.processes': '42' } });
  await setProfiles(ctx, 'c1', { assign: ['small', 'procs'] });
  const ex = showConfig(ctx, 'c1', true).expanded!;
  t.is(ex.config['limits.memory'], '100MiB');
  t.is(ex.sources['limits.memory'], 'local');
  t.is(ex.config['limits.processes'], '42');
  t.is(ex.sources['limits.processes'], 'profile:procs');
  t.is(ex.sources['limits.cpu'], 'profile:small');
  t.is(ex.readOnly['image.os'], 'busybox');
  await t.throwsAsync(setProfiles(ctx, 'c1', { add: 'nope' }), { message: /Profile "nope" not found/ });
  await t.throwsAsync(unsetConfig(ctx, 'c1', ['limits.cpu']), { message: /not set on the container/ });
  await unsetConfig(ctx, 'c1', ['limits.memory']);
  t.deepEqual(loadConfig(ctx.paths, 'c1').config, {});
});
