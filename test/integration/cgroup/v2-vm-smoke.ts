/**
 * The v2 driver against a real cgroup v2 kernel. Not a test file itself: v2-vm.test.ts boots a
 * Debian kernel under qemu with this script (and node) in an initramfs, cgroup2 mounted at
 * /sys/fs/cgroup, and reads the "ok"/"not ok" lines it prints on the serial console.
 * It can also be run by hand, as root, on any v2 host: node dist/test/integration/cgroup/v2-vm-smoke.js
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ATTACH_LEAF, detectLayout, openCgroups } from '../../../lib/cgroup/index.js';
import type { CgroupDriver } from '../../../lib/cgroup/index.js';

const prefix = `tslxc-test-cg-v2vm-${process.pid}`;
let passed = 0;
let failed = 0;
const children: ChildProcess[] = [];
let cg: CgroupDriver | undefined;

function assert(cond: unknown, what: string): void {
  if (!cond) throw new Error(what);
}
function eq(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}
async function check(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}: ${(err as Error).message.replace(/\n/g, ' ')}`);
  }
}
const read = (dir: string, file: string) => fs.readFileSync(path.join(dir, file), 'utf8').trim();
const words = (s: string) => s.split(/\s+/).filter(Boolean).sort();

async function sleeper(dir: string): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
  return child as ChildProcess & { pid: number };
}
const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

async function main(): Promise<void> {
  const warnings: string[] = [];
  let dir = '';
  const top = '/sys/fs/cgroup';
  const used = ['cpu', 'cpuset', 'io', 'memory', 'pids'];

  await check('layout is v2 with the controllers limits use', async () => {
    const layout = await detectLayout();
    console.log(`# controllers: ${layout.unified?.controllers.join(' ')}`);
    eq(layout.version, 'v2', 'version');
    for (const c of used) assert(layout.unified?.controllers.includes(c), `controller ${c} missing`);
    cg = await openCgroups({ prefix, onWarning: (m) => warnings.push(m) });
    eq(cg.version, 'v2', 'driver');
    eq(cg.devicesEnforced, false, 'devicesEnforced');
  });

  if (!cg) return;
  const driver = cg;
  await check('create enables controllers down to the prefix, none in the container', async () => {
    [dir] = await driver.create('c1');
    eq(dir, `${top}/${prefix}/c1`, 'dir');
    for (const c of used) {
      assert(words(read(top, 'cgroup.subtree_control')).includes(c), `${c} not enabled at the top`);
      assert(words(read(`${top}/${prefix}`, 'cgroup.subtree_control')).includes(c), `${c} not enabled in the prefix`);
    }
    eq(words(read(dir, 'cgroup.controllers')), used, 'container controllers');
    eq(read(dir, 'cgroup.subtree_control'), '', 'container subtree_control');
    eq(warnings, [], 'warnings');
  });

  await check('applyLimits writes and the kernel reads back', async () => {
    await driver.applyLimits('c1', {
      memoryBytes: 64 << 20,
      memorySwapBytes: 0,
      cpus: '0',
      cpuQuotaUs: 50000,
      cpuPeriodUs: 100000,
      cpuWeight: 300,
      pidsMax: 20,
      blkioWeight: 200,
    });
    console.log(
      `# optional files: ${['memory.swap.max', 'io.weight', 'io.bfq.weight', 'memory.peak', 'cgroup.kill'].filter((f) => fs.existsSync(`${dir}/${f}`)).join(' ')}`,
    );
    eq(read(dir, 'memory.max'), String(64 << 20), 'memory.max');
    eq(read(dir, 'memory.high'), 'max', 'memory.high');
    if (fs.existsSync(`${dir}/memory.swap.max`)) eq(read(dir, 'memory.swap.max'), '0', 'memory.swap.max');
    eq(read(dir, 'cpu.max'), '50000 100000', 'cpu.max');
    eq(read(dir, 'cpu.weight'), '300', 'cpu.weight');
    eq(read(dir, 'cpuset.cpus'), '0', 'cpuset.cpus');
    eq(read(dir, 'pids.max'), '20', 'pids.max');
    if (fs.existsSync(`${dir}/io.weight`)) eq(read(dir, 'io.weight'), 'default 200', 'io.weight');
  });

  await check('a soft memory limit is memory.high', async () => {
    await driver.applyLimits('c1', { memoryBytes: 32 << 20, memorySoft: true });
    eq(read(dir, 'memory.high'), String(32 << 20), 'memory.high');
    eq(read(dir, 'memory.max'), 'max', 'memory.max');
  });

  await check('unset limits reset to max', async () => {
    await driver.applyLimits('c1', {});
    eq(read(dir, 'memory.max'), 'max', 'memory.max');
    eq(read(dir, 'memory.high'), 'max', 'memory.high');
    eq(read(dir, 'cpu.max'), 'max 100000', 'cpu.max');
    eq(read(dir, 'cpu.weight'), '100', 'cpu.weight');
    eq(read(dir, 'cpuset.cpus'), '', 'cpuset.cpus');
    eq(read(dir, 'pids.max'), 'max', 'pids.max');
  });

  await check('a refused value is a clear error', async () => {
    try {
      await driver.applyLimits('c1', { cpus: '63' });
      throw new Error('no error');
    } catch (err) {
      assert(/^Cannot set the CPU set: writing "63" to .*cpuset.cpus failed: (EINVAL|ERANGE)/.test((err as Error).message), (err as Error).message);
    }
  });

  await check('processes: pids, usage, freeze, thaw, attach leaf, killAll', async () => {
    const a = await sleeper(dir);
    const [leaf] = await driver.attachDirs('c1');
    eq(leaf, `${dir}/${ATTACH_LEAF}`, 'leaf');
    const b = await sleeper(leaf!);
    eq(
      await driver.pids('c1'),
      [a.pid, b.pid].sort((x, y) => x - y),
      'pids',
    );
    const u = await driver.usage('c1');
    eq(u.processes, 2, 'usage.processes');
    // v2 does not move memory already charged: a task moved in may show close to nothing.
    assert(u.memoryBytes !== undefined, 'usage.memoryBytes');
    assert(u.memoryPeakBytes !== undefined, 'usage.memoryPeakBytes');
    assert(u.cpuTimeNs !== undefined, 'usage.cpuTimeNs');
    await driver.freeze('c1');
    eq(await driver.state('c1'), 'frozen', 'state after freeze');
    await driver.thaw('c1');
    eq(await driver.state('c1'), 'thawed', 'state after thaw');
    await driver.killAll('c1');
    await Promise.all([exited(a), exited(b)]);
    eq([a.signalCode, b.signalCode], ['SIGKILL', 'SIGKILL'], 'signals');
  });

  await check('a container systemd makes its root an inner cgroup: attach goes to the leaf, remove takes all', async () => {
    const [d2] = await driver.create('c2');
    // What systemd does at boot inside its cgroup namespace.
    fs.mkdirSync(`${d2}/init.scope`);
    const init = await sleeper(`${d2}/init.scope`);
    fs.writeFileSync(`${d2}/cgroup.subtree_control`, '+memory +pids');
    let busy = '';
    try {
      fs.writeFileSync(`${d2}/cgroup.procs`, String(init.pid));
    } catch (err) {
      busy = (err as NodeJS.ErrnoException).code ?? '';
    }
    eq(busy, 'EBUSY', 'joining the inner cgroup');
    const [leaf] = await driver.attachDirs('c2');
    const att = await sleeper(leaf!);
    eq((await driver.pids('c2')).length, 2, 'pids');
    await driver.remove('c2');
    await Promise.all([exited(init), exited(att)]);
    assert(!fs.existsSync(d2!), 'c2 left');
  });

  // An unprivileged container on v2 (when v2-vm.test.ts put the helper and a busybox rootfs in
  // the initramfs): its cgroup is delegated to its root (host uid 100000), which makes and fills
  // a sub-cgroup itself, as systemd does. The rootfs is shifted on disk (chown -R): this kernel's
  // tmpfs cannot be idmapped.
  const helper = '/app/native/tslxc-helper';
  if (fs.existsSync(helper)) {
    await check('an unprivileged container: user namespace, delegated cgroup, a sub-cgroup made inside', async () => {
      const [udir] = await driver.create('u1');
      await driver.delegate('u1', 100000, 100000);
      eq(fs.statSync(udir!).uid, 100000, "the dir is the container root's");
      eq(fs.statSync(`${udir}/cgroup.procs`).uid, 100000, "cgroup.procs is the container root's");
      eq(fs.statSync(`${udir}/memory.max`).uid, 0, "limits stay root's");
      const idmappable = spawnSync(helper, ['idmap-probe', '/ct/rootfs']).status === 0;
      console.log(`# idmapped tmpfs on this kernel: ${idmappable}`);
      eq(spawnSync('chown', ['-R', '100000:100000', '/ct/rootfs']).status, 0, 'chown -R');
      fs.mkdirSync('/run/u1', { recursive: true, mode: 0o700 });
      const maps = ['--uidmap', '0:100000:65536', '--gidmap', '0:100000:65536'];
      const st = spawnSync(
        helper,
        ['start', '--name', 'u1', '--rootfs', '/ct/rootfs', '--run-dir', '/run/u1', '--cgroup', udir!, ...maps, '--', '/bin/busybox', 'sleep', '1000'],
        { encoding: 'utf8' },
      );
      eq(st.status, 0, `start (${st.stderr.trim()})`);
      const [init, monitor] = st.stdout.trim().split(/\s+/).map(Number);
      eq(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${init}/status`, 'utf8'))?.[1], '100000', "init's host uid");
      const script =
        'id -u; mkdir /sys/fs/cgroup/sub && echo $$ > /sys/fs/cgroup/sub/cgroup.procs && cat /proc/self/cgroup; echo 1 > /proc/sys/kernel/printk_ratelimit 2>/dev/null || echo denied';
      const at = spawnSync(helper, ['attach', '--pid', String(init), '--cgroup', udir!, '--', '/bin/busybox', 'sh', '-c', script], { encoding: 'utf8' });
      eq(at.stdout.trim().split('\n'), ['0', '0::/sub', 'denied'], `attach (${at.stderr.trim()})`);
      assert(fs.existsSync(`${udir}/sub`), "the sub-cgroup is under the container's on the host");
      process.kill(init!, 'SIGKILL');
      for (let i = 0; i < 300 && fs.existsSync(`/proc/${monitor}`); i++) await new Promise((r) => setTimeout(r, 20));
      assert(!fs.existsSync(udir!), 'the monitor removed the cgroup, sub-cgroup included');
    });
  }

  // The device allow list on v2: the helper's BPF program on the container's cgroup.
  if (fs.existsSync(helper)) {
    await check('a device program: the default allow list, and nothing else, can be opened', async () => {
      const attachDevices = async (d: string, rules: readonly { type: string; major: number | string; minor: number | string; access: string }[]) => {
        const r = spawnSync(
          helper,
          ['devices', '--cgroup', d, ...rules.flatMap((x) => ['--allow', x.type === 'a' ? 'a' : `${x.type} ${x.major}:${x.minor} ${x.access}`])],
          { encoding: 'utf8' },
        );
        if (r.status !== 0) throw new Error(r.stderr.trim());
      };
      const dcg = await openCgroups({ prefix: `${prefix}-dev`, attachDevices });
      eq(dcg.devicesEnforced, true, 'devicesEnforced');
      try {
        const [ddir] = await dcg.create('d1');
        const script = `echo $$ > ${ddir}/cgroup.procs; for d in null zero urandom kmsg mem; do head -c1 /dev/$d > /dev/null 2>&1 && echo "$d ok" || echo "$d denied"; done; mknod /tmp/vdx b 254 0 && echo mknod-ok; rm -f /tmp/vdx`;
        const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
        eq(r.stdout.trim().split('\n'), ['null ok', 'zero ok', 'urandom ok', 'kmsg denied', 'mem denied', 'mknod-ok'], 'device access');
      } finally {
        await dcg.remove('d1');
        await dcg.removePrefix();
      }
    });
  }

  await check('remove and removePrefix leave nothing', async () => {
    await driver.remove('c1');
    await driver.remove('c1');
    await driver.removePrefix();
    assert(!fs.existsSync(`${top}/${prefix}`), 'prefix left');
  });
}

main()
  .catch((err) => {
    failed++;
    console.log(`not ok - crashed: ${(err as Error).stack}`);
  })
  .finally(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    // Run by hand on a real host, nothing may stay behind even after a failure.
    for (const n of ['c1', 'c2', 'u1']) await cg?.remove(n).catch(() => {});
    await cg?.removePrefix().catch(() => {});
    console.log(`SMOKE DONE ${passed} passed ${failed} failed`);
  });
