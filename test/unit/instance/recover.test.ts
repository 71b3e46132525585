import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Context } from '../../../lib/state/context.js';
import { freezeMarkerFile, type Paths } from '../../../lib/state/paths.js';
import type { CgroupDriver } from '../../../lib/cgroup/types.js';

/** A private installation with a fake cgroup driver that notes what is asked of it. */
function setup(t: { teardown(fn: () => void): void }, state: 'frozen' | 'thawed', thawFails = false) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-recover-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const paths: Paths = { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: root, cgroupPrefix: 'x' };
  fs.mkdirSync(path.join(paths.runDir, 'containers', 'c1'), { recursive: true });
  fs.mkdirSync(path.join(paths.runDir, 'locks'), { recursive: true });
  const calls: string[] = [];
  const ctx = new Context(paths);
  ctx.cgroups = async () => {
    calls.push('open');
    return {
      state: async () => state,
      thaw: async () => {
        calls.push('thaw');
        if (thawFails) throw new Error('cannot thaw');
      },
    } as unknown as CgroupDriver;
  };
  return { ctx, calls, marker: freezeMarkerFile(paths, 'c1') };
}

const deadPid = () => spawnSync('true').pid!;

test('taking the lock thaws what a killed snapshot left frozen, and says so', async (t) => {
  const { ctx, calls, marker } = setup(t, 'frozen');
  fs.writeFileSync(marker, String(deadPid()));
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: true });
  t.deepEqual(calls, ['open', 'thaw']);
  t.false(fs.existsSync(marker));
  calls.length = 0;
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: false }, 'once');
  t.deepEqual(calls, [], 'no marker, no cgroup work');
});

test('a marker whose container runs thawed (killed after its thaw) goes without a thaw', async (t) => {
  const { ctx, calls, marker } = setup(t, 'thawed');
  fs.writeFileSync(marker, String(deadPid()));
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: false });
  t.deepEqual(calls, ['open']);
  t.false(fs.existsSync(marker));
});

test('a live freezer is left alone; a thaw that fails stops the operation and keeps the marker', async (t) => {
  const live = setup(t, 'frozen');
  fs.writeFileSync(live.marker, String(process.pid));
  t.deepEqual(await live.ctx.withInstanceLock('c1', async (r) => r), { thawed: false });
  t.deepEqual(live.calls, []);
  t.true(fs.existsSync(live.marker));

  const failing = setup(t, 'frozen', true);
  fs.writeFileSync(failing.marker, String(deadPid()));
  let ran = false;
  await t.throwsAsync(failing.ctx.withInstanceLock('c1', async () => (ran = true)), { message: 'cannot thaw' });
  t.false(ran);
  t.true(fs.existsSync(failing.marker), 'the next operation tries again');
});
