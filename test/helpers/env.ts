import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext, TestFn } from 'ava';
import { Context } from '../../lib/state/context.js';
import type { Paths } from '../../lib/state/paths.js';
import { cgroupsOf, thawIfFrozen } from '../../lib/cgroup/context.js';

/** The checkout's root (tests run from dist/test/...). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cliPath = path.join(repoRoot, 'bin/tslxc.js');
/** What users run (package.json's bin): start and exec go through the native helper first. */
export const launcherPath = path.join(repoRoot, 'bin/tslxc');

export const isRoot = process.getuid?.() === 0;

/**
 * Integration tests need root. Without it they skip — unless TSLXC_REQUIRE_ROOT=1 (CI), where a
 * skip would hide a broken suite, so it fails instead.
 */
export function requireRoot(test: TestFn): boolean {
  if (isRoot) return true;
  if (process.env.TSLXC_REQUIRE_ROOT === '1') {
    test('integration tests need root', (t) => t.fail('TSLXC_REQUIRE_ROOT=1 but not running as root'));
  } else {
    test('integration tests need root (skipped)', (t) => t.pass());
  }
  return false;
}

/**
 * A private tslxc installation for one test file: its own state dir, run dir and cgroup prefix
 * (all named tslxc-test-*), the shared build cache, and a teardown that removes everything it made
 * even when the test failed.
 */
export class TestEnv {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  readonly paths: Paths;
  readonly ctx: Context;

  /** opts.lxcfs: this installation runs its own lxcfs (else it behaves as a host without one). */
  constructor(
    readonly label: string,
    opts: { lxcfs?: boolean } = {},
  ) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `tslxc-test-${label}-`));
    const id = path.basename(this.root).slice(-6).toLowerCase();
    this.paths = {
      stateDir: path.join(this.root, 'state'),
      runDir: path.join(this.root, 'run'),
      cacheDir: process.env.TSLXC_CACHE_DIR || '/var/cache/tslxc',
      cgroupPrefix: `tslxc-test-${label}-${id}`,
    };
    this.env = {
      ...process.env,
      TSLXC_DIR: this.paths.stateDir,
      TSLXC_RUN_DIR: this.paths.runDir,
      TSLXC_CACHE_DIR: this.paths.cacheDir,
      TSLXC_CGROUP_PREFIX: this.paths.cgroupPrefix,
      // The CLI's own client config (remotes, the default remote): never the user's.
      TSLXC_CONF: path.join(this.root, 'client'),
      // Another lxcfs per test file would be one more daemon, mount and process in every
      // leftover check: only the files that test lxcfs run one.
      TSLXC_LXCFS_BIN: opts.lxcfs ? '' : path.join(this.root, 'no-lxcfs'),
      // Built images' exports are made when asked for, not in the background (lib/image/
      // kept-export.ts): no test's image store or process list sees one it did not ask for.
      TSLXC_KEEP_EXPORT_DELAY_MS: '-1',
    };
    this.ctx = new Context(this.paths, { thawIfFrozen });
    // The built-in default profile puts eth0 on the user's bridge (tslxcbr0). A test installation
    // must never touch that: its default profile has no nic unless a test gives it one.
    fs.mkdirSync(path.join(this.paths.stateDir, 'profiles'), { recursive: true });
    fs.writeFileSync(path.join(this.paths.stateDir, 'profiles', 'default.yaml'), 'description: test default (no network)\nconfig: {}\ndevices: {}\n');
  }

  /** Run the CLI synchronously; returns code and output. */
  cli(args: string[], opts: { input?: string; timeoutMs?: number } = {}): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(launcherPath, args, { env: this.env, input: opts.input, encoding: 'utf8', timeout: opts.timeoutMs ?? 180_000 });
    return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Run the CLI asynchronously (for parallel launches). */
  cliAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(launcherPath, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  }

  /** Like cli() but fails the test with the command's stderr when it does not exit 0. */
  ok(t: ExecutionContext, args: string[], opts: { input?: string } = {}): string {
    const r = this.cli(args, opts);
    if (r.code !== 0) t.fail(`tslxc ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Delete every container of this installation, running or not (before its networks go). */
  async deleteContainers(): Promise<void> {
    const { listNames } = await import('../../lib/state/config.js');
    const { deleteInstance } = await import('../../lib/instance/manage.js');
    for (const name of listNames(this.paths)) await deleteInstance(this.ctx, name, { force: true }).catch(() => {});
  }

  /** Remove every container (forcefully), the cgroup prefix, and the dirs. */
  async cleanup(): Promise<void> {
    await this.deleteContainers();
    // Its lxcfs once no container reads from it; its mounts go with the others below.
    const { stopLxcfs } = await import('../../lib/host/lxcfs.js');
    await stopLxcfs(this.paths).catch(() => {});
    // dir pools copy spare roots in the background: stop those copies before the tree goes.
    const { dropAllSpares } = await import('../../lib/storage/spares.js');
    await dropAllSpares(this.paths).catch(() => {});
    // So do built images' exports (lib/image/kept-export.ts).
    const { stopKeeping } = await import('../../lib/image/kept-export.js');
    await stopKeeping(this.paths).catch(() => {});
    const cg = await cgroupsOf(this.ctx);
    await cg.removePrefix().catch(() => {});
    // Storage pools a failed test left mounted (btrfs loop files) live under this root only:
    // unmount them, deepest first, before the tree goes.
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m?.startsWith(`${this.root}/`));
    for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
