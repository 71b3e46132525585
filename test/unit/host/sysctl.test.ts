import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { checkHostLimits, hostNeedArgs, raiseHostLimits, readSysctl, SYSCTL_FILE, SYSTEMD_CONTAINER_NEED } from '../../../lib/host/sysctl.js';

/** A fake /proc/sys holding the given keys (dots become directories). */
function fakeRoot(t: { teardown(fn: () => void): void }, values: Record<string, number>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-sysctl-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const [k, v] of Object.entries(values)) {
    const file = path.join(root, ...k.split('.'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${v}\n`);
  }
  return root;
}

/** A Debian host as installed: the kernel's defaults. */
const DEBIAN_DEFAULTS = {
  'fs.inotify.max_user_instances': 128,
  'fs.inotify.max_user_watches': 8192,
  'fs.inotify.max_queued_events': 16384,
  'kernel.pty.max': 4096,
  'kernel.keys.maxkeys': 200,
  'kernel.keys.maxbytes': 20000,
  'net.ipv4.neigh.default.gc_thresh3': 1024,
  'net.ipv6.neigh.default.gc_thresh3': 1024,
  'fs.aio-max-nr': 65536,
  'vm.max_map_count': 65530,
  'kernel.dmesg_restrict': 0,
};

test("the check reports the low limits with LXD's values and a reason each", (t) => {
  const root = fakeRoot(t, DEBIAN_DEFAULTS);
  const checks = checkHostLimits({ root, usage: false });
  const by = Object.fromEntries(checks.map((c) => [c.key, c]));
  t.like(by['fs.inotify.max_user_instances'], { current: 128, recommended: 1048576, status: 'low', scope: 'shared' });
  t.like(by['fs.inotify.max_user_watches'], { current: 8192, recommended: 1048576, status: 'low' });
  t.like(by['kernel.keys.maxkeys'], { current: 200, recommended: 2000, status: 'low' });
  t.like(by['kernel.pty.max'], { current: 4096, status: 'low' });
  t.like(by['net.ipv4.neigh.default.gc_thresh3'], { current: 1024, recommended: 8192, status: 'low' });
  t.like(by['vm.max_map_count'], { current: 65530, recommended: 262144, status: 'low', scope: 'per-process' });
  // tslxc keeps containers away from the kernel log itself: LXD's dmesg_restrict is not needed.
  t.like(by['kernel.dmesg_restrict'], { current: 0, status: 'n/a', scope: 'not-needed' });
  // A key this kernel lacks is reported, not guessed.
  t.like(by['net.core.bpf_jit_limit'], { current: undefined, status: 'missing' });
  for (const c of checks) t.true(c.reason.length > 20 && !c.reason.includes('\n'), `${c.key} has a one-line reason`);
});

test('limits at or above the recommendation are ok', (t) => {
  const root = fakeRoot(t, { 'fs.inotify.max_user_instances': 1048576, 'fs.inotify.max_user_watches': 2097152 });
  const by = Object.fromEntries(checkHostLimits({ root, usage: false }).map((c) => [c.key, c]));
  t.is(by['fs.inotify.max_user_instances'].status, 'ok');
  t.is(by['fs.inotify.max_user_watches'].status, 'ok');
});

test('raising writes the values to the sysctl root and the sysctl.d file, and lowers nothing', (t) => {
  const root = fakeRoot(t, { ...DEBIAN_DEFAULTS, 'fs.inotify.max_user_watches': 2097152 });
  const dir = fakeRoot(t, {});
  const r = raiseHostLimits({ root, dir });
  t.is(r.file, path.join(dir, SYSCTL_FILE));
  t.deepEqual(r.failed, []);
  t.is(readSysctl('fs.inotify.max_user_instances', root), 1048576);
  t.is(readSysctl('kernel.keys.maxkeys', root), 2000);
  t.is(readSysctl('kernel.pty.max', root), 65536);
  t.is(readSysctl('vm.max_map_count', root), 262144);
  t.is(readSysctl('fs.inotify.max_user_watches', root), 2097152, 'a higher value the admin set stays');
  t.is(readSysctl('kernel.dmesg_restrict', root), 0, 'not a limit tslxc needs: left alone');
  t.false(r.raised.some((x) => x.key === 'fs.inotify.max_user_watches'));
  t.like(
    r.raised.find((x) => x.key === 'fs.inotify.max_user_instances'),
    { from: 128, to: 1048576 },
  );
  const conf = fs.readFileSync(r.file, 'utf8');
  t.regex(conf, /^fs\.inotify\.max_user_instances = 1048576$/m);
  t.regex(conf, /^fs\.inotify\.max_user_watches = 2097152$/m, 'the kept value is what boots get too');
  t.regex(conf, /^kernel\.pty\.max = 65536$/m);
  t.notRegex(conf, /dmesg_restrict|bpf_jit_limit/);
  // Every line is KEY = VALUE or a comment: what sysctl --system reads.
  for (const line of conf.trim().split('\n')) t.regex(line, /^(#.*|[a-z0-9_.-]+ = \d+)$/);
  // A second run finds nothing to raise and writes the same file.
  const again = raiseHostLimits({ root, dir });
  t.deepEqual(again.raised, []);
  t.is(fs.readFileSync(r.file, 'utf8'), conf);
});

test('a systemd container is expected to take inotify instances, watches and a pty; another only a pty', (t) => {
  const need = (sig: string) => hostNeedArgs(sig).filter((_a, i) => i % 2 === 1);
  t.deepEqual(need('SIGRTMIN+3'), [
    `inotify-instances=${SYSTEMD_CONTAINER_NEED.inotifyInstances}`,
    `inotify-watches=${SYSTEMD_CONTAINER_NEED.inotifyWatches}`,
    'ptys=1',
  ]);
  t.deepEqual(need('SIGUSR2'), ['inotify-instances=0', 'inotify-watches=0', 'ptys=1']);
});
