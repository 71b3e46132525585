import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ATTACH_LEAF, CgroupV2, openCgroups } from '../../../lib/cgroup/index.js';
import { fakeV2 } from './fake-kernel.js';
import type { FakeOptions } from './fake-kernel.js';

const CG = 'sys/fs/cgroup';

async function setup(t: { teardown(fn: () => unknown): void }, opts: FakeOptions = {}, prefix = 'tp') {
  const fake = await fakeV2(opts);
  t.teardown(fake.cleanup);
  const warnings: string[] = [];
  const cg = await openCgroups({
    prefix,
    mountinfo: fake.mountinfo,
    root: fake.root,
    sys: fake.kernel.sys(),
    timeouts: { freezeMs: 2000, killMs: 10000, removeMs: 2000, intervalMs: 1 },
    onWarning: (m) => warnings.push(m),
  });
  return { fake, cg, warnings, k: fake.kernel };
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).sort();

test('openCgroups picks the v2 driver; devices are not enforced there yet', async (t) => {
  const { cg } = await setup(t);
  t.true(cg instanceof CgroupV2);
  t.is(cg.version, 'v2');
  t.false(cg.hybrid);
  t.false(cg.devicesEnforced);
});

test('create makes one dir and hands the controllers down to it', async (t) => {
  const { fake, k, cg, warnings } = await setup(t, {}, 'a/b');
  const dirs = await cg.create('c1');
  t.deepEqual(dirs, [path.join(fake.root, CG, 'a/b/c1')]);
  t.deepEqual(cg.dirs('c1'), dirs);
  const want = ['cpu', 'cpuset', 'io', 'memory', 'pids'];
  for (const level of ['', 'a/', 'a/b/']) t.deepEqual(words(k.read(`${CG}/${level}cgroup.subtree_control`)), want, level);
  // hugetlb, rdma, misc are available but not needed for any limit: left alone.
  t.deepEqual(words(k.read(`${CG}/a/b/c1/cgroup.controllers`)), want);
  // The container's own cgroup enables nothing, so its init may live in it.
  t.is(k.read(`${CG}/a/b/c1/cgroup.subtree_control`), '');
  t.true(fs.existsSync(path.join(dirs[0]!, 'memory.max')));
  t.deepEqual(warnings, []);
  // No device policy is written on v2.
  t.false(k.writes.some((w) => /devices/.test(w.file)));
});

test('a controller the host lacks is skipped; a limit that needs it fails clearly', async (t) => {
  const { k, cg, warnings } = await setup(t, { controllers: ['memory', 'pids'] });
  await cg.create('c1');
  t.deepEqual(words(k.read(`${CG}/tp/c1/cgroup.controllers`)), ['memory', 'pids']);
  t.deepEqual(warnings, []);
  await cg.applyLimits('c1', { memoryBytes: 1 << 20, pidsMax: 10 });
  await t.throwsAsync(cg.applyLimits('c1', { cpuWeight: 200 }), { message: /cpu controller is not available/ });
  await t.throwsAsync(cg.applyLimits('c1', { cpus: '0' }), { message: /cpuset controller is not available/ });
});

test('a controller that will not enable is a warning, not a failure', async (t) => {
  const { k, cg, warnings } = await setup(t);
  k.refuse = (file, data) => (file === `${CG}/cgroup.subtree_control` && data === '+cpu' ? 'EINVAL' : undefined);
  await cg.create('c1');
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /the cpu controller.*EINVAL.*limits that need cpu will fail/);
});

test('applyLimits writes the v2 files, and unset values reset them', async (t) => {
  const { k, cg } = await setup(t);
  await cg.create('c1');
  const f = (file: string) => k.read(`${CG}/tp/c1/${file}`);
  await cg.applyLimits('c1', {
    memoryBytes: 1 << 30,
    memorySwapBytes: 0,
    cpus: '1',
    cpuQuotaUs: 50000,
    cpuPeriodUs: 200000,
    cpuWeight: 300,
    pidsMax: 64,
    blkioWeight: 500,
  });
  t.is(f('memory.max'), String(1 << 30));
  t.is(f('memory.high'), 'max');
  t.is(f('memory.swap.max'), '0');
  t.is(f('cpu.max'), '50000 200000');
  t.is(f('cpu.weight'), '300');
  t.is(f('cpuset.cpus'), '1');
  t.is(f('pids.max'), '64');
  t.is(f('io.weight'), '500');

  await cg.applyLimits('c1', {});
  t.is(f('memory.max'), 'max');
  t.is(f('memory.swap.max'), 'max');
  t.is(f('cpu.max'), 'max 100000');
  t.is(f('cpu.weight'), '100');
  t.is(f('cpuset.cpus'), ''); // empty = the parent's
  t.is(f('pids.max'), 'max');
  t.is(f('io.weight'), '100');
});

test('a soft memory limit goes to memory.high', async (t) => {
  const { k, cg } = await setup(t);
  await cg.create('c1');
  await cg.applyLimits('c1', { memoryBytes: 5 << 20, memorySoft: true });
  t.is(k.read(`${CG}/tp/c1/memory.high`), String(5 << 20));
  t.is(k.read(`${CG}/tp/c1/memory.max`), 'max');
});

test('a refused write names the file, the value and the reason', async (t) => {
  const { k, cg } = await setup(t);
  await cg.create('c1');
  k.refuse = (file) => (file.endsWith('cpu.max') ? 'EINVAL' : undefined);
  const err = await t.throwsAsync(cg.applyLimits('c1', { cpuQuotaUs: 1000, cpuPeriodUs: 1000 }));
  t.regex(err!.message, /^Cannot set the CPU quota: writing "1000 1000" to .*\/tp\/c1\/cpu.max failed: EINVAL/);
});

test('freeze waits for cgroup.events to say frozen; thaw undoes it', async (t) => {
  const { k, cg } = await setup(t, { freezeDelayReads: 3 });
  await cg.create('c1');
  t.is(await cg.state('c1'), 'thawed');
  await cg.freeze('c1');
  t.is(k.read(`${CG}/tp/c1/cgroup.freeze`), '1');
  t.is(await cg.state('c1'), 'frozen');
  await cg.thaw('c1');
  t.is(await cg.state('c1'), 'thawed');
});

test('a freeze that does not complete in time is undone', async (t) => {
  const { k, cg } = await setup(t, { freezeDelayReads: 1e9 });
  await cg.create('c1');
  const err = await t.throwsAsync(cg.freeze('c1'));
  t.regex(err!.message, /did not report "frozen 1"/);
  t.is(k.read(`${CG}/tp/c1/cgroup.freeze`), '0');
});

test('state of a missing cgroup is an error', async (t) => {
  const { cg } = await setup(t);
  await t.throwsAsync(cg.state('nope'), { message: /does not exist/ });
});

test('killAll uses cgroup.kill when the kernel has it', async (t) => {
  const { k, cg } = await setup(t);
  await cg.create('c1');
  fs.mkdirSync(path.join(k.root, CG, 'tp/c1/init.scope'));
  k.populate(path.join(k.root, CG, 'tp/c1/init.scope'));
  k.addProc(`${CG}/tp/c1/init.scope`, 1001);
  k.addProc(`${CG}/tp/c1/init.scope`, 1002);
  t.deepEqual(await cg.pids('c1'), [1001, 1002]);
  await cg.killAll('c1');
  t.deepEqual(await cg.pids('c1'), []);
  t.true(k.writes.some((w) => w.file === `${CG}/tp/c1/cgroup.kill` && w.data === '1'));
});

test('without cgroup.kill, killAll freezes, kills each task and thaws', async (t) => {
  const { k, cg } = await setup(t, { cgroupKill: false });
  await cg.create('c1');
  k.addProc(`${CG}/tp/c1`, 2001);
  await cg.killAll('c1');
  t.deepEqual(k.killed, [2001]);
  t.is(k.read(`${CG}/tp/c1/cgroup.freeze`), '0');
});

test('attachDirs gives a leaf under the container cgroup, and remove takes it too', async (t) => {
  const { fake, k, cg } = await setup(t);
  await cg.create('c1');
  const [leaf] = await cg.attachDirs('c1');
  t.is(leaf, path.join(fake.root, CG, 'tp/c1', ATTACH_LEAF));
  t.true(fs.existsSync(leaf!));
  t.deepEqual(await cg.attachDirs('c1'), [leaf]); // again: same leaf
  k.addProc(`${CG}/tp/c1/${ATTACH_LEAF}`, 3001);
  await cg.remove('c1');
  t.false(fs.existsSync(path.join(fake.root, CG, 'tp/c1')));
  t.deepEqual(k.killed, [3001]);
  await cg.remove('c1');
  await cg.removePrefix();
  t.false(fs.existsSync(path.join(fake.root, CG, 'tp')));
  t.true(fs.existsSync(path.join(fake.root, CG))); // never the top
});

test('usage reads the v2 counters', async (t) => {
  const { k, cg } = await setup(t);
  await cg.create('c1');
  const w = (f: string, v: string) => fs.writeFileSync(path.join(k.root, CG, 'tp/c1', f), v);
  w('memory.current', '4096\n');
  w('memory.peak', '8192\n');
  w('memory.swap.current', '0\n');
  w('cpu.stat', 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
  w('pids.current', '7\n');
  t.deepEqual(await cg.usage('c1'), { memoryBytes: 4096, memoryPeakBytes: 8192, swapBytes: 0, cpuTimeNs: 2500000, processes: 7 });
  fs.rmSync(path.join(k.root, CG, 'tp/c1/memory.peak'));
  t.is((await cg.usage('c1')).memoryPeakBytes, undefined);
});

test('a failed create on v2 removes the levels it made, and only those', async (t) => {
  const { fake, k, cg } = await setup(t, {}, 'a/b');
  k.refuse = (file, data) => (data === 'mkdir' && file.endsWith('/c1') ? 'ENOSPC' : undefined);
  await t.throwsAsync(cg.create('c1'), { message: /Cannot create cgroup .*a\/b\/c1: ENOSPC/ });
  t.false(fs.existsSync(path.join(fake.root, CG, 'a')));
  k.refuse = undefined;
  await cg.create('other');
  k.refuse = (file, data) => (data === 'mkdir' && file.endsWith('/c1') ? 'ENOSPC' : undefined);
  await t.throwsAsync(cg.create('c1'));
  t.true(fs.existsSync(path.join(fake.root, CG, 'a/b/other')));
});

test('create refuses to take over a cgroup that still has processes', async (t) => {
  const { fake, k, cg } = await setup(t);
  fs.mkdirSync(path.join(fake.root, CG, 'tp'));
  k.populate(path.join(fake.root, CG, 'tp'));
  fs.mkdirSync(path.join(fake.root, CG, 'tp/c1'));
  k.populate(path.join(fake.root, CG, 'tp/c1'));
  k.addProc(`${CG}/tp/c1`, 9);
  await t.throwsAsync(cg.create('c1'), { message: /already exist and hold 1 process/ });
  t.deepEqual(k.killed, []);
});
