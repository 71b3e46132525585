import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { run, runOk, sleep, type RunOptions, type RunResult } from './proc.js';

/**
 * A private LXD daemon for the bench: its own LXD_DIR under the bench's root (database, images,
 * storage pools, logs, its lxcpath), started by us as our child (this host has no systemd to do it),
 * initialised by a preseed that creates storage pools and NO network, and shut down at the end.
 *
 * LXD fetches "instance types" from images.linuxcontainers.org when it starts (and daily). The
 * bench may not send traffic anywhere but its own bridges, so the daemon gets an HTTP(S) proxy on
 * a closed loopback port: every outgoing HTTP request fails at once, without even a DNS lookup.
 * `images.auto_update_interval: 0` turns off the other periodic fetch (image auto-update).
 */
export const LXD_DIR_NAME = 'lxd';
const DEAD_PROXY = 'http://127.0.0.1:9';

export interface LxdPool {
  name: string;
  driver: 'dir' | 'btrfs';
}

export class LxdDaemon {
  readonly dir: string;
  readonly logFile: string;
  readonly pools: LxdPool[];
  /** Instances this run created (for cleanup and for their cgroups: lxc.payload.NAME). */
  readonly instances = new Set<string>();
  readonly images = new Set<string>();
  version = '';
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private started = false;
  private preseeded = false;

  constructor(
    private readonly env: BenchEnv,
    private readonly btrfsSize: string,
  ) {
    this.dir = path.join(env.root, LXD_DIR_NAME);
    this.logFile = path.join(env.root, 'lxd.log');
    this.pools = [
      { name: 'bench-dir', driver: 'dir' },
      { name: 'bench-btrfs', driver: 'btrfs' },
    ];
  }

  get clientEnv(): NodeJS.ProcessEnv {
    return { ...process.env, LXD_DIR: this.dir };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** `lxc ARGS` against this daemon (LXD's client, not LXC's lxc-* tools). */
  lxc(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run('lxc', args, { timeoutMs: 300_000, ...opts, env: this.clientEnv });
  }

  async lxcOk(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.lxc(args, opts);
    if (r.code !== 0) throw new Error(`lxc ${args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
    return r;
  }

  async start(log: (s: string) => void): Promise<void> {
    // LXD's unprivileged containers run as uid 100000+ and must traverse the path to their rootfs:
    // the bench root (made 0700) becomes 0711, searchable but not listable, as /var/lib/lxd is.
    fs.chmodSync(this.env.root, 0o711);
    fs.mkdirSync(this.dir, { mode: 0o711 });
    this.version = (await runOk('lxd', ['--version'])).stdout.trim();
    const group = groupExists('lxd') ? ['--group', 'lxd'] : [];
    const out = fs.openSync(this.logFile + '.out', 'a');
    this.started = true;
    this.child = spawn('lxd', [...group, '--logfile', this.logFile], {
      env: {
        ...process.env,
        LXD_DIR: this.dir,
        http_proxy: DEAD_PROXY,
        https_proxy: DEAD_PROXY,
        HTTP_PROXY: DEAD_PROXY,
        HTTPS_PROXY: DEAD_PROXY,
        no_proxy: '',
        NO_PROXY: '',
      },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.child!.on('exit', () => resolve()));
    log(`LXD ${this.version}: daemon PID ${this.child.pid}, LXD_DIR ${this.dir}`);
    const w = await run('lxd', ['waitready', '--timeout', '60'], { env: this.clientEnv, timeoutMs: 70_000 });
    if (w.code !== 0) throw new Error(`lxd waitready: ${w.stderr.trim()} (log: ${this.tail()})`);
  }

  /** Storage pools of our own (dir; btrfs on a loop file LXD makes in LXD_DIR/disks), no network. */
  async preseed(): Promise<string> {
    const doc = [
      'config:',
      '  images.auto_update_interval: "0"',
      'networks: []',
      'storage_pools:',
      ...this.pools.flatMap((p) => [
        `- name: ${p.name}`,
        `  driver: ${p.driver}`,
        ...(p.driver === 'btrfs' ? ['  config:', `    size: ${this.btrfsSize}`] : []),
      ]),
      'profiles:',
      '- name: default',
      '  devices:',
      '    root:',
      '      path: /',
      `      pool: ${this.pools[0].name}`,
      '      type: disk',
      '',
    ].join('\n');
    this.preseeded = true;
    const r = await run('lxd', ['init', '--preseed'], { env: this.clientEnv, input: doc, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`lxd init --preseed: ${r.stderr.trim()}`);
    const nets = JSON.parse((await this.lxcOk(['network', 'list', '--format', 'json'])).stdout) as { managed: boolean; name: string }[];
    const managed = nets.filter((n) => n.managed);
    if (managed.length) throw new Error(`LXD has managed networks after the preseed: ${managed.map((n) => n.name).join(' ')}`);
    return doc;
  }

  /** Remove what we made in LXD, then stop the daemon. Returns problems. */
  async cleanup(log: (s: string) => void): Promise<string[]> {
    const problems: string[] = [];
    if (!this.started) return problems;
    const c = { duringCleanup: true, timeoutMs: 180_000 };
    if (this.child?.exitCode === null && this.child.signalCode === null) {
      const list = await this.lxc(['list', '--format', 'json'], c);
      const names = list.code === 0 ? (JSON.parse(list.stdout) as { name: string }[]).map((x) => x.name) : [...this.instances];
      for (const n of names) {
        const d = await this.lxc(['delete', '--force', n], c);
        if (d.code !== 0) problems.push(`LXD: lxc delete --force ${n}: ${d.stderr.trim()}`);
      }
      const imgs = await this.lxc(['image', 'list', '--format', 'json'], c);
      for (const fp of imgs.code === 0 ? (JSON.parse(imgs.stdout) as { fingerprint: string }[]).map((x) => x.fingerprint) : []) {
        const d = await this.lxc(['image', 'delete', fp], c);
        if (d.code !== 0) problems.push(`LXD: lxc image delete ${fp}: ${d.stderr.trim()}`);
      }
      if (this.preseeded) {
        await this.lxc(['profile', 'device', 'remove', 'default', 'root'], c);
        for (const p of this.pools) {
          const d = await this.lxc(['storage', 'delete', p.name], c);
          if (d.code !== 0 && !/not found/i.test(d.stderr)) problems.push(`LXD: lxc storage delete ${p.name}: ${d.stderr.trim()}`);
        }
      }
      log('cleanup: lxd shutdown');
      const s = await run('lxd', ['shutdown', '--timeout', '60'], { ...c, env: this.clientEnv, timeoutMs: 90_000 });
      if (s.code !== 0) log(`cleanup: lxd shutdown: ${s.stderr.trim()}`);
    }
    // Our child: wait for its exit (it is reaped by node), else end it by its PID.
    if (!(await Promise.race([this.exited!.then(() => true), sleep(15_000).then(() => false)]))) {
      problems.push(`LXD daemon ${this.child?.pid} did not exit after "lxd shutdown"; SIGTERM, then SIGKILL`);
      this.child?.kill('SIGTERM');
      if (!(await Promise.race([this.exited!.then(() => true), sleep(10_000).then(() => false)]))) this.child?.kill('SIGKILL');
      await Promise.race([this.exited, sleep(5_000)]);
    }
    return problems;
  }

  /** The last lines of an instance's LXC log, to explain a failed start. */
  async instanceLog(name: string): Promise<string> {
    const r = await this.lxc(['info', '--show-log', name], { duringCleanup: true });
    return (r.stdout + r.stderr)
      .split('\n')
      .filter((l) => /ERROR|WARN/.test(l))
      .slice(-3)
      .join(' | ');
  }

  tail(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return 'no log';
    }
  }
}

function groupExists(name: string): boolean {
  try {
    return fs
      .readFileSync('/etc/group', 'utf8')
      .split('\n')
      .some((l) => l.split(':')[0] === name);
  } catch {
    return false;
  }
}
