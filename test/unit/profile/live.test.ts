import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { CgroupDriver, CgroupLimits } from '../../../lib/cgroup/types.js';
import { useCgroups } from '../../../lib/cgroup/context.js';
import { Context } from '../../../lib/state/context.js';
import { loadConfig, saveConfig, type InstanceConfig } from '../../../lib/state/config.js';
import { setConfig } from '../../../lib/instance/configure.js';
import { createProfile, loadProfile, setProfileKeys } from '../../../lib/instance/profiles.js';
import { selfRef } from '../../../lib/util/proc.js';

/**
 * Live changes against a fake driver: a "running" container (its pid files name this test
 * process) whose cgroup refuses some writes. A refused live write must leave the saved config
 * and the kernel's limits as they were.
 */
class FakeDriver {
  applied: CgroupLimits[] = [];
  refuse?: (l: CgroupLimits) => boolean;
  async exists() {
    return true;
  }
  async applyLimits(_name: string, l: CgroupLimits) {
    if (this.refuse?.(l)) throw new Error('write memory.limit_in_bytes: Device or resource busy');
    this.applied.push(l);
  }
}

function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-live-'));
  const paths = { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'tslxc-unit-none' };
  const drv = new FakeDriver();
  const ctx = new Context(paths);
  useCgroups(ctx, drv as unknown as CgroupDriver);
  fs.mkdirSync(path.join(paths.stateDir, 'containers', 'c1'), { recursive: true });
  const cfg: InstanceConfig = {
    name: 'c1',
    status: 'started',
    created_at: new Date().toISOString(),
    hostname: 'c1',
    image: { fingerprint: 'f'.repeat(64) },
    init: ['/sbin/init'],
    stop_signal: 'SIGUSR2',
    environment: {},
    profiles: ['p'],
    config: { 'limits.memory': '100MiB' },
    devices: {},
  };
  saveConfig(paths, cfg);
  const run = path.join(paths.runDir, 'containers', 'c1');
  fs.mkdirSync(run, { recursive: true });
  const me = selfRef();
  for (const f of ['init.pid', 'monitor.pid']) fs.writeFileSync(path.join(run, f), `${me.pid} ${me.startTime}\n`);
  return { ctx, drv, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

test('a live change is applied; a refused one is rolled back (config and limits)', async (t) => {
  const { ctx, drv, cleanup } = setup();
  t.teardown(cleanup);
  await createProfile(ctx, 'p', { config: { 'limits.processes': '50' } });
  const r = await setConfig(ctx, 'c1', { 'limits.memory': '200MiB' });
  t.true(r.appliedLive);
  t.deepEqual(drv.applied.at(-1), { memoryBytes: 200 * 2 ** 20, pidsMax: 50 });

  drv.refuse = (l) => l.memoryBytes === 8 * 2 ** 20;
  await t.throwsAsync(setConfig(ctx, 'c1', { 'limits.memory': '8MiB' }), {
    message: /Cannot apply the change to running container "c1".*Device or resource busy.*nothing was changed/,
  });
  t.is(loadConfig(ctx.paths, 'c1').config['limits.memory'], '200MiB');
  t.deepEqual(drv.applied.at(-1), { memoryBytes: 200 * 2 ** 20, pidsMax: 50 }, 'the old limits were written back');

  // A profile change reaches the running container, and a refused one is undone.
  await setProfileKeys(ctx, 'p', { 'limits.processes': '60' });
  t.deepEqual(drv.applied.at(-1), { memoryBytes: 200 * 2 ** 20, pidsMax: 60 });
  drv.refuse = (l) => l.pidsMax === 7;
  await t.throwsAsync(setProfileKeys(ctx, 'p', { 'limits.processes': '7' }), { message: /Cannot change profile "p"/ });
  t.is(loadProfile(ctx.paths, 'p').config['limits.processes'], '60');
});
