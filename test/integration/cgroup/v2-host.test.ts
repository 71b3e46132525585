import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recipeKey } from '../../../lib/image/build.js';
import { findRecipe, loadRecipe } from '../../../lib/image/recipe.js';
import { bootVm, copyBinary, packInitrd, staticBusybox, vmMissing } from '../../helpers/qemu.js';

/**
 * This machine is cgroup v1 (hybrid). v2-vm.test.ts checks the v2 driver's files on a real v2
 * kernel; this test goes further and runs whole container test files there: it boots the same
 * Debian kernel under qemu with the checkout in an initramfs (node, dist/, the static helper,
 * templates, profiles and the runtime node_modules), mounts cgroup2 alone on /sys/fs/cgroup (a
 * pure v2 host, as on current distributions), and runs ava on the listed files inside the VM as
 * root. Real busybox containers start there with their limits: the OOM kill, the fork bomb, the
 * CPU quota, the cpuset pinning and the live changes of limits.test.ts all run against the
 * kernel's v2 controllers. Nothing of it touches the host's cgroups: the VM is its own machine.
 *
 * Needs what test/helpers/qemu.ts names (qemu-system-x86_64, a static busybox, a kernel image);
 * without them it skips. Software emulation makes it slow (minutes), so it runs only the files below.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const helper = path.join(repoRoot, 'native/build/tslxc-helper');

/**
 * The container tests that run on the v2 kernel (files relative to dist/, with an ava --match):
 * every limit test, the unprivileged Debian boot (systemd as PID 1 in a delegated cgroup2
 * subtree, files shifted once: tmpfs on this 6.1 kernel has no idmapped mounts), and the start
 * plans and native exec.
 */
const RUNS: Array<{ file: string; match?: string }> = [
  { file: 'test/integration/limits/limits.test.js' },
  { file: 'test/integration/security/userns.test.js', match: '*Debian container boots systemd*' },
  // start plans replayed on v2 (the device program is one of their steps) and the native exec path
  { file: 'test/integration/instance/plan.test.js' },
];

/** Build tools and type packages the tests do not load: left out to keep the initramfs small. */
const SKIP_MODULES = new Set(['typescript', 'esbuild', '@esbuild', '@types', '.bin', '.cache']);

const missing = [...vmMissing(), ...(fs.existsSync(helper) ? [] : ['the built helper'])];

if (missing.length > 0) {
  test(`container tests on a cgroup v2 host (skipped: needs ${missing.join(', ')})`, (t) => t.pass());
} else {
  test('container limit tests and an unprivileged systemd boot pass on a real cgroup v2 host (qemu)', async (t) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-v2host-'));
    t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
    const initrd = buildInitrd(work);
    const { code, out } = await bootVm(initrd, { memoryMiB: 3072, timeoutMs: 25 * 60_000 });
    // The whole console for a closer look: TSLXC_V2HOST_LOG=/tmp/v2host.log.
    if (process.env.TSLXC_V2HOST_LOG) fs.writeFileSync(process.env.TSLXC_V2HOST_LOG, out);
    const lines = out.split(/\r?\n/);
    for (const l of lines.filter((x) => /^(not ok |ok |# |V2HOST|\s+message:)/.test(x))) t.log(l);
    const done = lines.map((l) => /^V2HOST DONE (\d+)/.exec(l)).find(Boolean);
    if (!done) {
      t.fail(`the VM did not finish the tests (qemu exit ${code}):\n${lines.slice(-40).join('\n')}`);
      return;
    }
    const failed = lines.filter((l) => /^not ok /.test(l) && !/# (SKIP|TODO)/.test(l));
    t.deepEqual(failed, [], lines.slice(-60).join('\n'));
    const passed = lines.filter((l) => /^ok /.test(l) && !/# (SKIP|TODO)/.test(l)).length;
    t.true(passed >= 7, `only ${passed} tests passed in the VM`);
    t.regex(out, /ok \d+ - a Debian container boots systemd to running unprivileged/, 'systemd ran in an unprivileged container on v2');
    t.regex(out, /V2HOST cgroup2fs/, 'the VM ran on a pure cgroup v2 hierarchy');
    t.is(done[1], '0', 'ava exited non-zero in the VM');
  });
}

/** The host programs tslxc runs (lib/**: run('cp', ...) and the like). */
const HOST_TOOLS = ['cp', 'tar', 'setpriv', 'du', 'stat', 'mount', 'umount', 'losetup'];

/** The host's cached build of the debian recipe as it is now, if there is one. */
function cachedDebianBuild(): string | undefined {
  const file = findRecipe('debian');
  if (!file) return undefined;
  const recipe = loadRecipe(file);
  const dir = path.join(process.env.TSLXC_CACHE_DIR || '/var/cache/tslxc', 'builds', `${recipe.name}-${recipe.release}-${recipeKey(recipe).slice(0, 12)}`);
  return fs.existsSync(path.join(dir, 'rootfs')) ? dir : undefined;
}

/** A root holding busybox, node and its libraries, and the checkout as /app (the repo's layout). */
function buildInitrd(work: string): string {
  const root = path.join(work, 'root');
  for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'run', 'usr/bin', 'usr/sbin', 'app', 'etc', 'root'])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(staticBusybox!, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  copyBinary(root, fs.realpathSync(process.execPath), 'usr/bin/node');
  // tslxc calls GNU cp, tar, setpriv... with options busybox lacks: the host's, before busybox in PATH.
  for (const tool of HOST_TOOLS) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found) copyBinary(root, fs.realpathSync(found), `usr/bin/${tool}`);
  }
  // Users and groups the tests' tools look up.
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');

  const app = path.join(root, 'app');
  for (const d of ['bin', 'dist', 'templates', 'profiles']) fs.cpSync(path.join(repoRoot, d), path.join(app, d), { recursive: true });
  // The VM has no network: the Debian image comes from the host's build cache (the entry the
  // current recipe's key names), so `image build debian` inside finds it built.
  const debianBuild = cachedDebianBuild();
  if (debianBuild) {
    // cp -a: the tree holds device nodes (fs.cpSync cannot copy those).
    fs.mkdirSync(path.join(root, 'var/cache/tslxc/builds'), { recursive: true });
    const r = spawnSync('cp', ['-a', debianBuild, path.join(root, 'var/cache/tslxc/builds/')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`copying the debian build failed: ${r.stderr}`);
  }
  fs.mkdirSync(path.join(app, 'native/build'), { recursive: true });
  fs.copyFileSync(helper, path.join(app, 'native/build/tslxc-helper'));
  // The lock addon node loads (lib/util/lock.ts); it needs only libc, which node brought.
  fs.copyFileSync(path.join(repoRoot, 'native/build/tslxc_lock.node'), path.join(app, 'native/build/tslxc_lock.node'));
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(app, 'package.json'));
  fs.cpSync(path.join(repoRoot, 'node_modules'), path.join(app, 'node_modules'), {
    recursive: true,
    filter: (src) => !SKIP_MODULES.has(path.basename(src)) || path.dirname(src) !== path.join(repoRoot, 'node_modules'),
  });

  // pivot_root cannot leave the initramfs (rootfs): stage one moves everything onto a tmpfs and
  // switch_roots there, as a real boot does; stage two is the host the tests see.
  fs.writeFileSync(
    path.join(root, 'init'),
    `#!/bin/busybox sh
/bin/busybox mkdir -p /newroot
/bin/busybox mount -t tmpfs -o size=2600m,mode=0755 root /newroot
for d in /*; do [ "$d" = /newroot ] || /bin/busybox cp -a "$d" /newroot/; done
exec /bin/busybox switch_root /newroot /stage2
`,
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(root, 'stage2'),
    `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
echo "V2HOST $(grep -q "^cgroup2 /sys/fs/cgroup cgroup2" /proc/mounts && echo cgroup2fs) $(uname -r) controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
cd /app
status=0
${RUNS.map((r) => `TSLXC_REQUIRE_ROOT=1 node node_modules/ava/entrypoints/cli.mjs --tap --timeout=10m ${r.match ? `--match '${r.match}' ` : ''}dist/${r.file} 2>&1 || status=1`).join('\n')}
echo "V2HOST DONE $status"
poweroff -f
`,
    { mode: 0o755 },
  );
  return packInitrd(root, work);
}
