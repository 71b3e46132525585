import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { openCgroups } from '../../../lib/cgroup/index.js';
import { CgroupSetupNeeded, planCgroups } from '../../../lib/cgroup/plan.js';
import { grantRule, type DeviceRule } from '../../../lib/cgroup/devices.js';
import type { CgroupLimits } from '../../../lib/cgroup/types.js';
import { fakeHybrid, fakeV2, type Fake } from './fake-kernel.js';

const LIMITS: CgroupLimits = { memoryBytes: 256 * 1024 * 1024, memorySwapBytes: 0, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsMax: 500, cpuWeight: 200 };
const GRANT = grantRule('c', 10, 200, 'unix-char device "tun"');

/** Every file under the container's dirs, by path relative to the dir, with its content. */
function tree(dirs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (top: string, d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(top, p);
      else out[`${path.basename(path.dirname(top))}/${path.relative(top, p)}`] = fs.readFileSync(p, 'utf8');
    }
  };
  for (const d of dirs) walk(d, d);
  return out;
}

async function drivers(fake: Fake) {
  const attached: Array<[string, string[]]> = [];
  const opts = { prefix: 'tp', mountinfo: fake.mountinfo, root: fake.root };
  const attach = async (dir: string, rules: readonly DeviceRule[]) =>
    void attached.push([path.basename(dir), rules.map((r) => `${r.type}${r.major}:${r.minor}`)]);
  const real = await openCgroups({ ...opts, sys: fake.kernel.sys(), attachDevices: attach });
  const plan = async (name: string) => {
    const planner = planCgroups(fake.kernel.sys(), real.dirs(name));
    const driver = await openCgroups({ ...opts, sys: planner.sys, attachDevices: planner.attachDevices });
    return { driver, steps: planner.steps };
  };
  return { real, plan, attached };
}

for (const [kind, make] of [
  ['v1 (hybrid)', fakeHybrid],
  ['v2', fakeV2],
] as const) {
  test(`${kind}: the planned steps, executed, leave the cgroups the driver makes itself`, async (t) => {
    const fake = await make();
    t.teardown(fake.cleanup);
    const { real, plan, attached } = await drivers(fake);
    // The prefix exists (an earlier start made it).
    await real.create('warm');
    await real.remove('warm');

    const { driver, steps } = await plan('c1');
    await driver.create('c1', [GRANT]);
    await driver.applyLimits('c1', LIMITS);
    await driver.attachDirs('c1');
    t.false(await real.exists('c1'), 'planning makes nothing');
    t.true(steps.length > 0);
    const k = fake.kernel;
    for (const [op, p, ...rest] of steps) {
      if (op === 'mkdir') await k.mkdir(p);
      else if (op === 'write') await k.writeFile(p, rest[0]);
      else if (op === 'devices') attached.push([path.basename(p), rest.slice(1).map((r) => r.replace(/^(\w) (\S+) .*$/, '$1$2'))]);
      else if (op !== 'chown') t.fail(`unexpected step ${op}`);
    }

    await real.create('c2', [GRANT]);
    await real.applyLimits('c2', LIMITS);
    await real.attachDirs('c2');
    t.deepEqual(tree(real.dirs('c1')), tree(real.dirs('c2')));
    if (kind === 'v2') t.deepEqual(attached[0][1], attached[1][1], 'the same device program');
  });

  test(`${kind}: a missing prefix level or a stale cgroup is set-up, not a step`, async (t) => {
    const fake = await make();
    t.teardown(fake.cleanup);
    const { real, plan } = await drivers(fake);
    const needsSetup = (e: unknown): boolean => !!e && (e instanceof CgroupSetupNeeded || needsSetup((e as { cause?: unknown }).cause));
    const first = await plan('c1');
    t.true(needsSetup(await first.driver.create('c1').catch((e: unknown) => e)));
    await real.create('c1');
    const stale = await plan('c1');
    t.true(needsSetup(await stale.driver.create('c1').catch((e: unknown) => e)));
    await real.remove('c1');
    const clean = await plan('c1');
    await clean.driver.create('c1');
    t.true(clean.steps.every(([op, p]) => op !== 'mkdir' || real.dirs('c1').some((d) => p.startsWith(d))));
  });
}
