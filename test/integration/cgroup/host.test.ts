import anyTest from 'ava';
import type { TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CgroupV2, detectLayout, openCgroups } from '../../../lib/cgroup/index.js';
import type { CgroupDriver } from '../../../lib/cgroup/index.js';

/**
 * The cgroup drivers against the real kernel, as root. Each test uses its own prefix named
 * tslxc-test-cg-*, starts its own `sleep` processes (and ends only those, by PID), and removes
 * all it made in a teardown that runs even when the test fails.
 */
const test = anyTest as TestFn;
const isRoot = process.getuid?.() === 0;

if (!isRoot) {
  if (process.env.TSLXC_REQUIRE_ROOT === '1') test('cgroup integration tests need root', (t) => t.fail('TSLXC_REQUIRE_ROOT=1 but not running as root'));
  else test('cgroup integration tests need root (skipped)', (t) => t.pass());
} else {
  defineTests();
}

function uniquePrefix(label: string): string {
  return `tslxc-test-cg-${label}-${crypto.randomBytes(3).toString('hex')}`;
}

interface Sandbox {
  cg: CgroupDriver;
  warnings: string[];
  /** a sleep started by this test, placed in the given cgroup dirs */
  sleeper(dirs: string[]): Promise<ChildProcess & { pid: number }>;
}

/** Everything a test makes goes through this, so teardown knows what to end and remove. */
async function sandbox(
  t: { teardown(fn: () => unknown): void },
  label: string,
  make?: (prefix: string, warn: (m: string) => void) => Promise<CgroupDriver>,
): Promise<Sandbox> {
  const prefix = uniquePrefix(label);
  const warnings: string[] = [];
  const cg = make ? await make(prefix, (m) => warnings.push(m)) : await openCgroups({ prefix, onWarning: (m) => warnings.push(m) });
  const children: ChildProcess[] = [];
  const names = new Set<string>();
  const origCreate = cg.create.bind(cg);
  cg.create = async (name) => {
    names.add(name);
    return origCreate(name);
  };
  t.teardown(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    for (const n of names) await cg.remove(n).catch(() => {});
    await cg.removePrefix().catch(() => {});
    leftovers(prefix); // fails loudly if anything stayed
  });
  return {
    cg,
    warnings,
    async sleeper(dirs) {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
      children.push(child);
      await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
      for (const d of dirs) fs.writeFileSync(path.join(d, 'cgroup.procs'), String(child.pid));
      return child as ChildProcess & { pid: number };
    },
  };
}

/** Any dir named after the prefix in any hierarchy of the host. */
function leftovers(prefix: string): void {
  const left: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    for (const p of [path.join('/sys/fs/cgroup', h, prefix), path.join('/sys/fs/cgroup', prefix)]) if (fs.existsSync(p)) left.push(p);
  }
  if (left.length > 0) throw new Error(`cgroups left behind: ${[...new Set(left)].join(', ')}`);
}

const read = (dir: string, file: string) => fs.readFileSync(path.join(dir, file), 'utf8').trim();

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

function procState(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

function defineTests(): void {
  test('this host is detected as v1 hybrid', async (t) => {
    const layout = await detectLayout();
    t.is(layout.version, 'v1');
    t.true(layout.hybrid);
    const names = layout.v1.map((h) => path.basename(h.mountPoint));
    for (const h of ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd']) t.true(names.includes(h), h);
    t.is(layout.unified?.mountPoint, '/sys/fs/cgroup/unified');
    // Controllers not claimed by a v1 hierarchy show up in cgroup2 (here hugetlb); none that limits use.
    for (const c of ['cpu', 'cpuset', 'memory', 'pids', 'io']) t.false(layout.unified?.controllers.includes(c), c);
  });

  test('v1: create, limits read back, a process frozen, thawed, killed, all removed', async (t) => {
    const { cg, warnings, sleeper } = await sandbox(t, 'life');
    t.is(cg.version, 'v1');
    const dirs = await cg.create('c1');
    t.is(dirs.length, 10);
    for (const d of dirs) t.true(fs.statSync(d).isDirectory(), d);
    const dir = (h: string) => dirs.find((d) => d.startsWith(`/sys/fs/cgroup/${h}/`))!;

    t.is(read(dir('cpuset'), 'cpuset.cpus'), read('/sys/fs/cgroup/cpuset', 'cpuset.cpus'));
    t.is(read(dir('cpuset'), 'cpuset.mems'), read('/sys/fs/cgroup/cpuset', 'cpuset.mems'));
    const devices = read(dir('devices'), 'devices.list').split('\n');
    t.false(devices.includes('a *:* rwm'));
    for (const rule of ['c 1:3 rwm', 'c 136:* rwm', 'c *:* m', 'b *:* m', 'c 10:200 rwm']) t.true(devices.includes(rule), rule);

    await cg.applyLimits('c1', {
      memoryBytes: 64 << 20,
      memorySwapBytes: 32 << 20,
      cpus: '0',
      cpuQuotaUs: 50000,
      cpuPeriodUs: 100000,
      cpuWeight: 50,
      pidsMax: 50,
    });
    t.is(read(dir('memory'), 'memory.limit_in_bytes'), String(64 << 20));
    if (fs.existsSync(path.join(dir('memory'), 'memory.memsw.limit_in_bytes'))) {
      t.is(read(dir('memory'), 'memory.memsw.limit_in_bytes'), String(96 << 20));
    }
    t.is(read(dir('cpu'), 'cpu.cfs_quota_us'), '50000');
    t.is(read(dir('cpu'), 'cpu.cfs_period_us'), '100000');
    t.is(read(dir('cpu'), 'cpu.shares'), '512');
    t.is(read(dir('cpuset'), 'cpuset.cpus'), '0');
    t.is(read(dir('pids'), 'pids.max'), '50');

    const child = await sleeper(dirs);
    t.deepEqual(await cg.pids('c1'), [child.pid]);
    const usage = await cg.usage('c1');
    t.is(usage.processes, 1);
    t.true((usage.memoryBytes ?? -1) >= 0);
    t.true((usage.cpuTimeNs ?? -1) >= 0);

    await cg.freeze('c1');
    t.is(await cg.state('c1'), 'frozen');
    t.is(read(dir('freezer'), 'freezer.state'), 'FROZEN');
    await cg.thaw('c1');
    t.is(await cg.state('c1'), 'thawed');
    t.is(procState(child.pid), 'S');

    await cg.killAll('c1');
    await exited(child);
    t.is(child.signalCode, 'SIGKILL');
    t.deepEqual(await cg.pids('c1'), []);

    // Unset limits go back to "no limit".
    await cg.applyLimits('c1', {});
    t.is(read(dir('memory'), 'memory.limit_in_bytes'), '9223372036854771712');
    t.is(read(dir('cpu'), 'cpu.cfs_quota_us'), '-1');
    t.is(read(dir('cpu'), 'cpu.shares'), '1024');
    t.is(read(dir('cpuset'), 'cpuset.cpus'), read('/sys/fs/cgroup/cpuset', 'cpuset.cpus'));
    t.is(read(dir('pids'), 'pids.max'), 'max');
    t.deepEqual(warnings, []);

    await cg.remove('c1');
    for (const d of dirs) t.false(fs.existsSync(d), d);
    t.false(await cg.exists('c1'));
    await cg.remove('c1'); // again: nothing to do
  });

  test('v1: a value the kernel refuses is a clear error', async (t) => {
    const { cg } = await sandbox(t, 'refuse');
    await cg.create('c1');
    // A CPU the host lacks: EINVAL, or ERANGE when beyond the kernel's CPU count.
    const missing = String(Number(read('/sys/fs/cgroup/cpuset', 'cpuset.effective_cpus').split(/[-,]/).at(-1)) + 1);
    const err = await t.throwsAsync(cg.applyLimits('c1', { cpus: missing }));
    t.regex(err!.message, new RegExp(`^Cannot set the CPU set: writing "${missing}" to /sys/fs/cgroup/cpuset/.*/c1/cpuset.cpus failed: (EINVAL|ERANGE): `));
    const err3 = await t.throwsAsync(cg.applyLimits('c1', { cpus: '4096' }));
    t.regex(err3!.message, /failed: (EINVAL|ERANGE): /);
  });

  test('v1: the device list is enforced', async (t) => {
    const { cg } = await sandbox(t, 'dev');
    const dirs = await cg.create('c1');
    const dev = dirs.find((d) => d.startsWith('/sys/fs/cgroup/devices/'))!;
    // The shell joins the cgroup itself, then opens one allowed and one denied device.
    const r = spawnSync('sh', ['-c', `echo $$ > ${dev}/cgroup.procs && : < /dev/null && echo null-ok; : < /dev/kmsg && echo kmsg-ok`], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    t.regex(r.stdout, /null-ok/);
    t.notRegex(r.stdout, /kmsg-ok/);
    t.regex(r.stderr, /Operation not permitted/);
  });

  test('v1: remove kills tasks in nested cgroups (as a container systemd makes them) and removes depth first', async (t) => {
    const { cg, sleeper } = await sandbox(t, 'nest');
    const dirs = await cg.create('c1');
    const nested = dirs.filter((d) => /\/(systemd|pids|unified)\//.test(d)).map((d) => path.join(d, 'system.slice', 'ssh.service'));
    for (const n of nested) fs.mkdirSync(n, { recursive: true });
    const child = await sleeper([...nested, ...dirs.filter((d) => /\/(freezer|memory)\//.test(d))]);
    t.deepEqual(await cg.pids('c1'), [child.pid]);
    await cg.remove('c1');
    await exited(child);
    for (const d of dirs) t.false(fs.existsSync(d), d);
  });

  test('v1: create over a live cgroup refuses, over a stale one replaces it', async (t) => {
    const { cg, sleeper } = await sandbox(t, 'stale');
    const dirs = await cg.create('c1');
    fs.mkdirSync(
      path.join(
        dirs.find((d) => d.includes('/systemd/'))!,
        'init.scope',
      ),
    );
    await cg.create('c1'); // stale: no tasks
    t.false(
      fs.existsSync(
        path.join(
          dirs.find((d) => d.includes('/systemd/'))!,
          'init.scope',
        ),
      ),
    );
    const child = await sleeper([dirs.find((d) => d.includes('/pids/'))!]);
    await t.throwsAsync(cg.create('c1'), { message: /already exist and hold 1 process/ });
    t.is(procState(child.pid), 'S'); // not killed by the refusal
  });

  test('v2 driver on the real cgroup2 hierarchy (no controllers here): freeze, kill, attach leaf, remove', async (t) => {
    const layout = await detectLayout();
    t.truthy(layout.unified);
    const { cg, warnings, sleeper } = await sandbox(
      t,
      'v2',
      async (prefix, onWarning) => new CgroupV2({ layout: { version: 'v2', hybrid: false, v1: [], unified: layout.unified! }, prefix, onWarning }),
    );
    const [dir] = await cg.create('c1');
    t.is(dir, `/sys/fs/cgroup/unified/${cg.prefix}/c1`);
    t.false(cg.devicesEnforced);
    await cg.applyLimits('c1', {}); // nothing to reset where no controller is
    await t.throwsAsync(cg.applyLimits('c1', { pidsMax: 5 }), { message: /pids controller is not available/ });
    t.deepEqual(warnings, []);

    const leaf = await cg.attachDirs('c1');
    const a = await sleeper([dir!]);
    const b = await sleeper(leaf);
    t.deepEqual(
      await cg.pids('c1'),
      [a.pid, b.pid].sort((x, y) => x - y),
    );

    await cg.freeze('c1');
    t.is(await cg.state('c1'), 'frozen');
    t.regex(read(dir!, 'cgroup.events'), /frozen 1/);
    await cg.thaw('c1');
    t.is(await cg.state('c1'), 'thawed');

    await cg.killAll('c1'); // cgroup.kill on this 6.x kernel
    await Promise.all([exited(a), exited(b)]);
    t.is(a.signalCode, 'SIGKILL');
    t.is(b.signalCode, 'SIGKILL');
    await cg.remove('c1');
    t.false(fs.existsSync(dir!));
  });
}
