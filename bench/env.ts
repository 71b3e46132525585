import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, sleep, type RunOptions, type RunResult } from './proc.js';

/** The checkout's root (the bench runs from dist/bench/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = path.join(repoRoot, 'bin/tslxc.js');
/** What users run (npm's bin, /usr/local/bin/tslxc): a sh launcher for cliPath. */
export const launcherPath = path.join(repoRoot, 'bin/tslxc');

/**
 * Everything one bench run owns: a private tslxc installation (state dir, run dir, cgroup prefix;
 * the build cache is shared), a private LXC path, and the names of the LXC containers it made.
 * cleanup() removes all of it, and only it: processes are ended by PID, and only processes whose
 * command line or pid file ties them to this run's root.
 */
export class BenchEnv {
  readonly id: string;
  readonly root: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly lxcPath: string;
  readonly cgroupPrefix: string;
  readonly env: NodeJS.ProcessEnv;
  readonly lxcNames = new Set<string>();
  /** More cgroup names to remove at the end (LXD's instances: lxc.payload.NAME, lxc.monitor.NAME). */
  readonly cgroupNames = new Set<string>();
  /** Extra cleanup steps of the parts that made host resources (LXD, the LXC peer's bridge); run in reverse order. */
  private readonly cleanups: { what: string; fn: (log: (s: string) => void) => Promise<string[]> }[] = [];
  private tslxcPrepared = false;

  constructor() {
    this.id = randomBytes(3).toString('hex');
    this.root = `/tmp/tslxc-bench-${this.id}`;
    fs.mkdirSync(this.root, { mode: 0o700 }); // throws if it exists: never share a root
    this.stateDir = path.join(this.root, 'state');
    this.runDir = path.join(this.root, 'run');
    this.lxcPath = path.join(this.root, 'lxc');
    fs.mkdirSync(this.lxcPath);
    this.cgroupPrefix = `tslxc-bench-${this.id}`;
    this.env = {
      ...process.env,
      TSLXC_DIR: this.stateDir,
      TSLXC_RUN_DIR: this.runDir,
      TSLXC_CGROUP_PREFIX: this.cgroupPrefix,
    };
  }

  /** `tslxc ARGS` as users run it: bin/tslxc, the launcher package.json names (it starts node on bin/tslxc.js). */
  tslxc(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(launcherPath, args, { ...opts, env: this.env });
  }

  lxc(tool: string, name: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    return run(tool, ['-P', this.lxcPath, '-n', name, ...args], opts);
  }

  /**
   * Make this installation's containers comparable to the LXC peer: the root on a `dir` storage
   * pool (a plain directory, as LXC's `dir:` rootfs) and no network device (the built-in default
   * profile would give each container eth0 on a managed bridge, with dnsmasq and NAT on the host).
   * A profile in TSLXC_DIR/profiles shadows the built-in one of the same name.
   */
  async prepareTslxc(): Promise<void> {
    if (this.tslxcPrepared) return;
    this.tslxcPrepared = true;
    fs.mkdirSync(path.join(this.stateDir, 'profiles'), { recursive: true });
    fs.writeFileSync(
      path.join(this.stateDir, 'profiles', 'default.yaml'),
      [
        'description: tslxc bench - the root on a dir pool, no network (like its LXC peer)',
        'config: {}',
        'devices:',
        '  root:',
        '    type: disk',
        '    path: /',
        '    pool: default',
        '',
      ].join('\n'),
    );
    // No spare roots (lib/storage/spares.ts): they copy the image in the background after a create,
    // which would run beside the LXC peer's measurements; the core part times boots, not creates.
    const r = await this.tslxc(['storage', 'create', 'default', 'dir', 'spare_roots=false']);
    if (r.code !== 0) throw new Error(`tslxc storage create default dir: ${r.stderr.trim()}`);
  }

  /** The nftables table tslxc uses for this installation (lib/network/names.ts derives it so). */
  get nftTable(): string {
    return this.cgroupPrefix.replace(/[^A-Za-z0-9_]/g, '_');
  }

  async hasNftTable(opts: RunOptions = {}): Promise<boolean> {
    const t = await run('nft', ['list', 'table', 'ip', this.nftTable], opts).catch(() => undefined);
    return t?.code === 0;
  }

  private listYaml(dir: string): string[] {
    try {
      return fs
        .readdirSync(path.join(this.stateDir, dir))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** Register a cleanup step for something a part made on the host; it returns its problems. */
  onCleanup(what: string, fn: (log: (s: string) => void) => Promise<string[]>): void {
    this.cleanups.push({ what, fn });
  }

  tslxcNames(): string[] {
    try {
      return fs.readdirSync(path.join(this.stateDir, 'containers')).filter((n) => !n.startsWith('.'));
    } catch {
      return [];
    }
  }

  /** Remove everything this run made. Returns what could not be removed (empty when all went). */
  async cleanup(log: (s: string) => void): Promise<string[]> {
    const problems: string[] = [];
    const c = { duringCleanup: true, timeoutMs: 180_000 };
    const nftBefore = await this.hasNftTable(c);

    // tslxc containers: delete --force kills running ones (monitor and init) and removes their dirs.
    let names = this.tslxcNames();
    if (names.length) {
      log(`cleanup: deleting ${names.length} tslxc container(s)`);
      const r = await this.tslxc(['delete', '--force', ...names], c);
      log(`cleanup: tslxc delete --force took ${(r.ms / 1000).toFixed(1)} s${r.code ? `, failed: ${r.stderr.trim()}` : ''}`);
      names = this.tslxcNames();
      for (const n of names) {
        // Last resort: end the monitor and init recorded in our own run dir, then try again.
        for (const f of ['init.pid', 'monitor.pid']) killRecorded(path.join(this.runDir, 'containers', n, f));
      }
      if (names.length) {
        await sleep(500);
        await this.tslxc(['delete', '--force', ...names], c);
        for (const n of this.tslxcNames()) problems.push(`tslxc container ${n} not deleted`);
      }
    }

    // Networks and storage pools (none is expected: the bench's default profile has no nic and a
    // dir pool, but a changed tslxc could still make them; a bridge is visible host-wide).
    for (const n of this.listYaml('networks')) {
      log(`cleanup: deleting network ${n}`);
      const d = await this.tslxc(['network', 'delete', n], c);
      if (d.code !== 0) {
        problems.push(`tslxc network delete ${n}: ${d.stderr.trim()}`);
        if (fs.existsSync(`/sys/class/net/${n}/bridge`)) {
          await run('ip', ['link', 'del', n], c);
          problems.push(`bridge ${n} deleted with ip link del`);
        }
      }
    }
    for (const n of this.listYaml('storage-pools')) {
      const d = await this.tslxc(['storage', 'delete', n], c);
      if (d.code !== 0) problems.push(`tslxc storage delete ${n}: ${d.stderr.trim()}`);
    }
    // tslxc's own lxcfs, which the first start ran (its process and its two mounts under our root).
    const { stopLxcfs } = await import('../lib/host/lxcfs.js');
    await stopLxcfs({ stateDir: this.stateDir, runDir: this.runDir, cacheDir: '', cgroupPrefix: this.cgroupPrefix });
    const nftTable = this.nftTable;
    if (await this.hasNftTable(c)) {
      problems.push(
        `tslxc left its nft table "ip ${nftTable}" after its containers were deleted (${nftBefore ? 'it was there before the cleanup' : 'it appeared during the cleanup'}; the bench deleted it)`,
      );
      await run('nft', ['delete', 'table', 'ip', nftTable], c);
    }

    // LXC containers: kill (we only get here with a stopped one unless something failed), destroy.
    const lxcDirs = fs.existsSync(this.lxcPath) ? fs.readdirSync(this.lxcPath) : [];
    for (const n of new Set([...this.lxcNames, ...lxcDirs])) {
      const info = await this.lxc('lxc-info', n, ['-sH'], c).catch(() => undefined);
      if (info && info.stdout.trim() !== 'STOPPED' && info.code === 0) {
        log(`cleanup: killing LXC container ${n}`);
        const k = await this.lxc('lxc-stop', n, ['-k'], c);
        if (k.code !== 0) log(`cleanup: lxc-stop -k ${n}: ${k.stderr.trim()}`);
      }
      if (fs.existsSync(path.join(this.lxcPath, n, 'config'))) {
        const d = await this.lxc('lxc-destroy', n, [], c);
        log(`cleanup: lxc-destroy ${n} took ${(d.ms / 1000).toFixed(1)} s`);
        if (d.code !== 0) problems.push(`lxc-destroy ${n}: ${d.stderr.trim()}`);
      }
    }

    // What the parts made themselves (LXD's daemon and its instances, the LXC peer's bridge and its
    // dnsmasq), latest first: the bridge goes after the LXC containers on it were destroyed above.
    for (const c of [...this.cleanups].reverse()) {
      try {
        problems.push(...(await c.fn(log)));
      } catch (e) {
        problems.push(`cleanup of ${c.what} failed: ${(e as Error).message}`);
      }
    }

    // Processes still tied to our root (monitors carry it in their command line): ours, by PID.
    const procs = processesUnder(this.root);
    if (procs.length) {
      problems.push(`processes left: ${procs.map((p) => `${p.pid} (${p.cmd})`).join(', ')}; killed`);
      for (const p of procs) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(300);
    }

    // Cgroups: our tslxc prefix in every hierarchy, and LXC's payload/monitor dirs of our names.
    const cgNames = [this.cgroupPrefix, ...[...this.lxcNames].flatMap((n) => [`lxc.payload.${n}`, `lxc.monitor.${n}`]), ...this.cgroupNames];
    for (const dir of cgroupDirs(cgNames)) {
      const left = await removeCgroupTree(dir);
      if (left) problems.push(`cgroup ${left} not removed`);
    }

    // Mounts must never have reached the host; if one did, detach it before removing the tree.
    const mounts = mountsUnder(this.root);
    if (mounts.length) {
      problems.push(`mounts under ${this.root} found: ${mounts.join(', ')}; detached`);
      for (const m of mounts.reverse()) await run('umount', ['-l', m], c).catch(() => undefined);
    }
    // Loop devices backed by a file of ours (tslxc's and LXD's btrfs pools): freed with their
    // pools; one still attached is detached.
    for (const l of loopsUnder(this.root)) {
      problems.push(`loop device ${l.dev} (${l.file}) left attached; detached`);
      await run('losetup', ['-d', l.dev], c).catch(() => undefined);
    }
    // LXC (and LXD's built-in liblxc) keep lock dirs named after each lxcpath under /run/lxc/lock:
    // ours are all below /run/lxc/lock/<our root>.
    fs.rmSync(path.join('/run/lxc/lock', this.root), { recursive: true, force: true });
    if (mountsUnder(this.root).length === 0) {
      fs.rmSync(this.root, { recursive: true, force: true });
    } else {
      problems.push(`${this.root} kept: mounts remain under it`);
    }
    return problems;
  }
}

/** Loop devices whose backing file lies under root. */
export function loopsUnder(root: string): { dev: string; file: string }[] {
  const out: { dev: string; file: string }[] = [];
  let devs: string[] = [];
  try {
    devs = fs.readdirSync('/sys/block').filter((d) => d.startsWith('loop'));
  } catch {
    return out;
  }
  for (const d of devs) {
    try {
      const file = fs
        .readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8')
        .trim()
        .replace(/ \(deleted\)$/, '');
      if (file === root || file.startsWith(root + '/')) out.push({ dev: `/dev/${d}`, file });
    } catch {
      /* not attached */
    }
  }
  return out;
}

function killRecorded(pidFile: string): void {
  let fields: string[];
  try {
    fields = fs.readFileSync(pidFile, 'utf8').trim().split(/\s+/);
  } catch {
    return;
  }
  const pid = Number(fields[0]);
  if (!pid || procStartTime(pid) !== fields[1]) return; // not the process the file names any more
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot). */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function processesUnder(root: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(root + '/') || cmd.endsWith(root)) out.push({ pid: Number(d), cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

export function mountsUnder(root: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === root || m.startsWith(root + '/')));
}

/** Existing cgroup dirs with one of these names at the top of any hierarchy (v1 or v2). */
export function cgroupDirs(names: string[]): string[] {
  const roots = ['/sys/fs/cgroup'];
  try {
    for (const h of fs.readdirSync('/sys/fs/cgroup')) roots.push(path.join('/sys/fs/cgroup', h));
  } catch {
    /* no cgroupfs */
  }
  const out: string[] = [];
  for (const r of roots) {
    for (const n of names) {
      const p = path.join(r, n);
      try {
        if (fs.statSync(p).isDirectory() && fs.existsSync(path.join(p, 'cgroup.procs'))) out.push(p);
      } catch {
        /* absent */
      }
    }
  }
  return out;
}

/** rmdir a cgroup and its children, deepest first; returns the first dir that would not go. */
async function removeCgroupTree(dir: string): Promise<string | undefined> {
  let children: fs.Dirent[] = [];
  try {
    children = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  } catch {
    return undefined; // already gone
  }
  for (const c of children) {
    const left = await removeCgroupTree(path.join(dir, c.name));
    if (left) return left;
  }
  for (let i = 0; i < 20; i++) {
    try {
      fs.rmdirSync(dir);
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      await sleep(100); // EBUSY: its last tasks are still exiting
    }
  }
  return dir;
}
