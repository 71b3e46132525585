import test from 'ava';
import path from 'node:path';
import { openCgroups } from '../../../lib/cgroup/index.js';
import { DEFAULT_DEVICE_RULES, deviceRuleChange, deviceRuleText, fullDeviceList, grantRule, type DeviceRule } from '../../../lib/cgroup/devices.js';
import { fakeHybrid, fakeV2 } from './fake-kernel.js';

/** The device cgroup rules of unix-char/unix-block grants: what v1 writes, what v2's program gets. */

const CG = 'sys/fs/cgroup';
const x0 = grantRule('c', 240, 0, 'x0');
const b1 = grantRule('b', 240, 1, 'b1');
const full = grantRule('c', 1, 7, 'full again');
const texts = (rules: readonly DeviceRule[]) => rules.map(deviceRuleText);

async function v1(t: { teardown(fn: () => unknown): void }) {
  const fake = await fakeHybrid({});
  t.teardown(fake.cleanup);
  const cg = await openCgroups({ prefix: 'tp', mountinfo: fake.mountinfo, root: fake.root, sys: fake.kernel.sys(), timeouts: { intervalMs: 1 } });
  const k = fake.kernel;
  const list = (rel: string) => k.deviceList(path.join(fake.root, CG, 'devices', rel));
  return { fake, cg, k, list };
}

test('a grant is "TYPE MAJOR:MINOR rwm"; the full list is the defaults then the grants, each once', (t) => {
  t.is(deviceRuleText(x0), 'c 240:0 rwm');
  t.is(deviceRuleText(b1), 'b 240:1 rwm');
  const all = fullDeviceList([x0, full, x0]);
  t.deepEqual(texts(all), [...texts(DEFAULT_DEVICE_RULES), 'c 240:0 rwm']);
});

test('a change allows the new grants and denies the gone ones, never a default', (t) => {
  t.deepEqual(deviceRuleChange([], [x0, b1]), { allow: [x0, b1], deny: [] });
  const c = deviceRuleChange([x0, b1, full], [b1]);
  t.deepEqual(texts(c.allow), []);
  t.deepEqual(texts(c.deny), ['c 240:0 rwm'], '1:7 is a default: removing a device of it revokes nothing');
  t.deepEqual(deviceRuleChange([x0, x0], []).deny, [x0], 'once');
});

test('v1 create: defaults, then the grants on the prefix and the container; none without grants', async (t) => {
  const { cg, list } = await v1(t);
  await cg.create('c0');
  t.deepEqual(list('tp'), texts(DEFAULT_DEVICE_RULES));
  t.deepEqual(list('tp/c0'), texts(DEFAULT_DEVICE_RULES));
  await cg.create('c1', [x0]);
  t.deepEqual(list('tp'), [...texts(DEFAULT_DEVICE_RULES), 'c 240:0 rwm']);
  t.deepEqual(list('tp/c1'), [...texts(DEFAULT_DEVICE_RULES), 'c 240:0 rwm']);
  t.false(list('tp/c0').includes('c 240:0 rwm'), 'the other container does not get it');
});

test('v1 live change: a grant reaches the cgroups below the container; a removal leaves all of them and the prefix', async (t) => {
  const { fake, cg, k, list } = await v1(t);
  await cg.create('c1');
  await k.mkdir(path.join(fake.root, CG, 'devices/tp/c1/system.slice'));
  await cg.changeDevices('c1', [], [x0, b1]);
  for (const d of ['tp', 'tp/c1', 'tp/c1/system.slice']) t.true(list(d).includes('c 240:0 rwm') && list(d).includes('b 240:1 rwm'), d);
  await cg.changeDevices('c1', [x0, b1], [b1]);
  for (const d of ['tp', 'tp/c1', 'tp/c1/system.slice']) {
    t.false(list(d).includes('c 240:0 rwm'), d);
    t.true(list(d).includes('b 240:1 rwm'), d);
  }
  t.true(list('tp').includes('c 1:7 rwm'));
});

test('v1: the prefix keeps a grant while another container holds it, and drops a stale one at the next grant', async (t) => {
  const { cg, list } = await v1(t);
  await cg.create('c1', [x0]);
  await cg.create('c2', [x0]);
  await cg.changeDevices('c1', [x0], []);
  t.true(list('tp').includes('c 240:0 rwm'), 'c2 still holds it');
  t.true(list('tp/c2').includes('c 240:0 rwm'));
  // c2 goes away (its monitor removes its cgroup); the next start with a grant trims the prefix.
  await cg.remove('c2');
  t.true(list('tp').includes('c 240:0 rwm'));
  await cg.create('c3', [b1]);
  t.false(list('tp').includes('c 240:0 rwm'));
  t.true(list('tp').includes('b 240:1 rwm'));
});

test('v2: the program gets the defaults and the grants at create, and is replaced on a live change', async (t) => {
  const fake = await fakeV2({});
  t.teardown(fake.cleanup);
  const calls: Array<{ dir: string; rules: string[]; replace: boolean }> = [];
  const cg = await openCgroups({
    prefix: 'tp',
    mountinfo: fake.mountinfo,
    root: fake.root,
    sys: fake.kernel.sys(),
    attachDevices: async (dir, rules, opts) => void calls.push({ dir: path.relative(fake.root, dir), rules: texts(rules), replace: opts?.replace ?? false }),
  });
  await cg.create('c1', [x0]);
  await cg.changeDevices('c1', [x0], [b1]);
  t.deepEqual(calls, [
    { dir: `${CG}/tp/c1`, rules: [...texts(DEFAULT_DEVICE_RULES), 'c 240:0 rwm'], replace: false },
    { dir: `${CG}/tp/c1`, rules: [...texts(DEFAULT_DEVICE_RULES), 'b 240:1 rwm'], replace: true },
  ]);
});
