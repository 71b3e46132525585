import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CgroupFs, CgroupSys } from '../../../lib/cgroup/sys.js';

/**
 * A fake cgroup tree in a temp dir, with just enough of the kernel's behaviour that the drivers
 * can be tested without root: mkdir makes the control files, writes have their side effects
 * (subtree_control, freezer, cgroup.kill, memsw ordering), rmdir refuses a busy cgroup, and
 * "processes" are PIDs written into cgroup.procs that die when killed.
 */

type Hierarchy = { mountPoint: string; kind: 'v1'; controllers: string[] } | { mountPoint: string; kind: 'v2' };

export interface FakeOptions {
  /** v1: whether memory.memsw.* exist (swap accounting on) */
  memsw?: boolean;
  /** v1: whether blkio.bfq.weight exists */
  bfq?: boolean;
  /** v2: controllers at the root (cgroup.controllers) */
  controllers?: string[];
  /** v2: whether cgroup.kill exists (kernel 5.14+) */
  cgroupKill?: boolean;
  /** v2: reads of cgroup.events before a freeze shows as "frozen 1" */
  freezeDelayReads?: number;
  /** v1: writes to freezer.state "FROZEN" that stay FREEZING (Infinity: never freezes) */
  freezingRounds?: number;
}

export interface Write {
  /** path relative to the fake root, e.g. "sys/fs/cgroup/memory/t/c1/memory.limit_in_bytes" */
  file: string;
  data: string;
}

const V1_UNLIMITED = '9223372036854771712';

export const HYBRID_MOUNTINFO = `22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

export const V2_MOUNTINFO = `22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

function errno(code: string, msg: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${msg}`), { code });
}

export class FakeKernel implements CgroupFs {
  readonly writes: Write[] = [];
  readonly killed: number[] = [];
  /** v1: kills sent to frozen tasks, delivered on thaw */
  private pending = new Set<number>();
  private eventReads = 0;
  private freezingLeft = 0;
  /** test hook: make the kernel refuse a write (or a mkdir: data "mkdir"); return an errno code to refuse */
  refuse?: (file: string, data: string) => string | undefined;

  constructor(
    readonly root: string,
    private readonly hierarchies: Hierarchy[],
    private readonly opts: FakeOptions,
  ) {}

  rel(p: string): string {
    return path.relative(this.root, p);
  }

  private hierarchyOf(p: string): Hierarchy | undefined {
    return this.hierarchies.filter((h) => p === h.mountPoint || p.startsWith(h.mountPoint + '/')).sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  }

  /** The control files the kernel would show in a new cgroup of this hierarchy. */
  populate(dir: string, isTop = false): void {
    const h = this.hierarchyOf(dir);
    if (!h) throw new Error(`not in a fake hierarchy: ${dir}`);
    const files: Record<string, string> = { 'cgroup.procs': '' };
    if (h.kind === 'v1') {
      Object.assign(files, { tasks: '', 'cgroup.clone_children': '0', notify_on_release: '0' });
      for (const c of h.controllers) {
        if (c === 'cpu') Object.assign(files, { 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.shares': '1024' });
        if (c === 'cpuacct') files['cpuacct.usage'] = '0';
        if (c === 'cpuset') Object.assign(files, { 'cpuset.cpus': isTop ? '0-3' : '', 'cpuset.mems': isTop ? '0' : '' });
        if (c === 'memory') {
          Object.assign(files, {
            'memory.limit_in_bytes': V1_UNLIMITED,
            'memory.soft_limit_in_bytes': V1_UNLIMITED,
            'memory.usage_in_bytes': '0',
            'memory.max_usage_in_bytes': '0',
          });
          if (this.opts.memsw) Object.assign(files, { 'memory.memsw.limit_in_bytes': V1_UNLIMITED, 'memory.memsw.usage_in_bytes': '0' });
        }
        // A new cgroup starts with a copy of its parent's list, as the kernel's device controller does.
        if (c === 'devices')
          Object.assign(files, {
            'devices.allow': '',
            'devices.deny': '',
            'devices.list': isTop ? 'a *:* rwm' : this.deviceList(path.dirname(dir)).join('\n'),
          });
        if (c === 'freezer' && !isTop) files['freezer.state'] = 'THAWED';
        if (c === 'blkio' && this.opts.bfq) files['blkio.bfq.weight'] = '100';
        if (c === 'pids' && !isTop) Object.assign(files, { 'pids.max': 'max', 'pids.current': '0' });
      }
    } else {
      const enabled = isTop ? (this.opts.controllers ?? []) : this.readList(path.join(path.dirname(dir), 'cgroup.subtree_control'));
      Object.assign(files, { 'cgroup.controllers': enabled.join(' '), 'cgroup.subtree_control': '', 'cpu.stat': 'usage_usec 0\n' });
      if (!isTop) {
        Object.assign(files, { 'cgroup.events': 'populated 0\nfrozen 0', 'cgroup.freeze': '0' });
        if (this.opts.cgroupKill !== false) files['cgroup.kill'] = '';
        for (const c of enabled) {
          if (c === 'memory') {
            Object.assign(files, {
              'memory.max': 'max',
              'memory.high': 'max',
              'memory.swap.max': 'max',
              'memory.current': '0',
              'memory.peak': '0',
              'memory.swap.current': '0',
            });
          }
          if (c === 'cpu') Object.assign(files, { 'cpu.max': 'max 100000', 'cpu.weight': '100' });
          if (c === 'cpuset') Object.assign(files, { 'cpuset.cpus': '', 'cpuset.mems': '' });
          if (c === 'pids') Object.assign(files, { 'pids.max': 'max', 'pids.current': '0' });
          if (c === 'io') files['io.weight'] = 'default 100';
        }
      }
    }
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v ? `${v}\n` : '');
  }

  private readList(file: string): string[] {
    try {
      return fs.readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  }

  // ---- CgroupFs

  async readFile(p: string): Promise<string> {
    const base = path.basename(p);
    const text = await fsp.readFile(p, 'utf8');
    if (base === 'freezer.state' && text.trim() === 'FREEZING') {
      // The kernel moves FREEZING → FROZEN on its own once every task has stopped.
      if (this.freezingLeft > 0) return text;
      await fsp.writeFile(p, 'FROZEN\n');
      return 'FROZEN\n';
    }
    if (base === 'cgroup.events' && this.opts.freezeDelayReads) {
      const frozenWanted = fs.readFileSync(path.join(path.dirname(p), 'cgroup.freeze'), 'utf8').trim() === '1';
      if (frozenWanted && this.eventReads++ < this.opts.freezeDelayReads) return text.replace('frozen 1', 'frozen 0');
    }
    return text;
  }

  async writeFile(p: string, data: string): Promise<void> {
    if (!fs.existsSync(p)) throw errno('ENOENT', `no such file ${p}`);
    const file = this.rel(p);
    const refused = this.refuse?.(file, data);
    if (refused) throw errno(refused, `fake kernel refused ${data} in ${file}`);
    this.writes.push({ file, data });
    const dir = path.dirname(p);
    const base = path.basename(p);
    const value = data.trim();
    switch (base) {
      case 'cgroup.subtree_control': {
        const cur = new Set(this.readList(p));
        const avail = new Set(this.readList(path.join(dir, 'cgroup.controllers')));
        const isTop = this.hierarchyOf(dir)?.mountPoint === dir;
        for (const tok of value.split(/\s+/)) {
          const c = tok.slice(1);
          if (!avail.has(c)) throw errno('EINVAL', `${c} not available`);
          if (!isTop && this.readList(path.join(dir, 'cgroup.procs')).length > 0) throw errno('EBUSY', 'tasks in an inner cgroup');
          if (tok.startsWith('+')) cur.add(c);
          else cur.delete(c);
        }
        fs.writeFileSync(p, `${[...cur].join(' ')}\n`);
        return;
      }
      case 'cgroup.freeze':
        fs.writeFileSync(p, `${value}\n`);
        fs.writeFileSync(path.join(dir, 'cgroup.events'), `populated 0\nfrozen ${value === '1' ? 1 : 0}\n`);
        this.eventReads = 0;
        return;
      case 'cgroup.kill':
        for (const pid of this.subtreeProcs(dir)) this.die(pid);
        return;
      case 'freezer.state':
        if (value === 'FROZEN') {
          const cur = fs.readFileSync(p, 'utf8').trim();
          if (cur === 'FROZEN') return;
          this.freezingLeft = cur === 'THAWED' ? (this.opts.freezingRounds ?? 0) : this.freezingLeft - 1;
          fs.writeFileSync(p, 'FREEZING\n');
        } else if (value === 'THAWED') {
          fs.writeFileSync(p, 'THAWED\n');
          for (const pid of this.pending) this.die(pid);
          this.pending.clear();
        } else throw errno('EINVAL', 'bad freezer state');
        return;
      case 'memory.soft_limit_in_bytes':
        fs.writeFileSync(p, `${value === '-1' ? V1_UNLIMITED : value}\n`);
        return;
      case 'memory.limit_in_bytes':
      case 'memory.memsw.limit_in_bytes': {
        const v = value === '-1' ? V1_UNLIMITED : value;
        const other = path.join(dir, base === 'memory.limit_in_bytes' ? 'memory.memsw.limit_in_bytes' : 'memory.limit_in_bytes');
        if (fs.existsSync(other)) {
          const o = BigInt(fs.readFileSync(other, 'utf8').trim());
          // The kernel keeps memory <= memory+swap at all times.
          if (base === 'memory.limit_in_bytes' ? BigInt(v) > o : BigInt(v) < o) throw errno('EINVAL', 'memory > memsw');
        }
        fs.writeFileSync(p, `${v}\n`);
        return;
      }
      case 'devices.allow':
      case 'devices.deny': {
        // The kernel's rules, as far as tslxc relies on them: "deny a" empties the list, a rule
        // is allowed only when the parent has it, and a denied rule leaves the whole subtree.
        const list = this.deviceList(dir);
        const isTop = this.hierarchyOf(dir)?.mountPoint === dir;
        if (value === 'a') {
          fs.writeFileSync(path.join(dir, 'devices.list'), base === 'devices.allow' ? 'a *:* rwm\n' : '');
          return;
        }
        if (base === 'devices.allow') {
          const parent = isTop ? ['a *:* rwm'] : this.deviceList(path.dirname(dir));
          if (!parent.includes('a *:* rwm') && !parent.includes(value)) throw errno('EPERM', `${value}: not in the parent's list`);
          if (!list.includes(value)) fs.writeFileSync(path.join(dir, 'devices.list'), [...list, value].join('\n') + '\n');
          return;
        }
        const drop = (d: string) => {
          fs.writeFileSync(
            path.join(d, 'devices.list'),
            this.deviceList(d)
              .filter((r) => r !== value)
              .map((r) => `${r}\n`)
              .join(''),
          );
          for (const sub of fs.readdirSync(d, { withFileTypes: true })) if (sub.isDirectory()) drop(path.join(d, sub.name));
        };
        drop(dir);
        return;
      }
      default:
        fs.writeFileSync(p, data.endsWith('\n') ? data : `${data}\n`);
    }
  }

  /** The rules of a v1 devices cgroup (its devices.list), one a line. */
  deviceList(dir: string): string[] {
    const f = path.join(dir, 'devices.list');
    return fs.existsSync(f)
      ? fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : [];
  }

  async mkdir(p: string): Promise<void> {
    const refused = this.refuse?.(this.rel(p), 'mkdir');
    if (refused) throw errno(refused, `fake kernel refused mkdir ${p}`);
    await fsp.mkdir(p);
    this.populate(p);
  }

  async rmdir(p: string): Promise<void> {
    if (!fs.existsSync(p)) throw errno('ENOENT', p);
    if ((await this.subdirs(p)).length > 0) throw errno('EBUSY', `${p} has child cgroups`);
    if (this.readList(path.join(p, 'cgroup.procs')).length > 0) throw errno('EBUSY', `${p} has tasks`);
    await fsp.rm(p, { recursive: true });
  }

  async rename(from: string, to: string): Promise<void> {
    if (fs.existsSync(to)) throw errno('EEXIST', to);
    await fsp.rename(from, to);
  }

  async subdirs(p: string): Promise<string[]> {
    return (await fsp.readdir(p, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  }

  async exists(p: string): Promise<boolean> {
    return fs.existsSync(p);
  }

  // ---- processes

  /** Put a fake process in a cgroup (relative dir, e.g. "sys/fs/cgroup/pids/t/c1"). */
  addProc(relDir: string, pid: number): void {
    fs.appendFileSync(path.join(this.root, relDir, 'cgroup.procs'), `${pid}\n`);
  }

  private subtreeProcs(dir: string): number[] {
    const out = this.readList(path.join(dir, 'cgroup.procs')).map(Number);
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) out.push(...this.subtreeProcs(path.join(dir, d.name)));
    return out;
  }

  /** The PID leaves every cgroup.procs in the fake tree. */
  private die(pid: number): void {
    this.killed.push(pid);
    const walk = (dir: string) => {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, d.name);
        if (d.isDirectory()) walk(p);
        else if (d.name === 'cgroup.procs') {
          const left = this.readList(p).filter((x) => Number(x) !== pid);
          fs.writeFileSync(p, left.map((x) => `${x}\n`).join(''));
        }
      }
    };
    walk(this.root);
  }

  private isFrozenV1(pid: number): boolean {
    for (const h of this.hierarchies) {
      if (h.kind !== 'v1' || !h.controllers.includes('freezer')) continue;
      const find = (dir: string): boolean => {
        for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
          if (!d.isDirectory()) continue;
          const sub = path.join(dir, d.name);
          const state = fs.readFileSync(path.join(sub, 'freezer.state'), 'utf8').trim();
          if (state !== 'THAWED' && this.readList(path.join(sub, 'cgroup.procs')).map(Number).includes(pid)) return true;
          if (find(sub)) return true;
        }
        return false;
      };
      if (find(h.mountPoint)) return true;
    }
    return false;
  }

  sys(): CgroupSys {
    return {
      fs: this,
      kill: (pid) => {
        // As in v1: a SIGKILL to a frozen task waits for the thaw.
        if (this.isFrozenV1(pid)) this.pending.add(pid);
        else this.die(pid);
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))),
      now: () => Date.now(),
    };
  }

  /** Contents of a file by relative path, trimmed. */
  read(rel: string): string {
    return fs.readFileSync(path.join(this.root, rel), 'utf8').trim();
  }
}

export interface Fake {
  kernel: FakeKernel;
  root: string;
  mountinfo: string;
  cleanup(): Promise<void>;
}

async function tmp(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'tslxc-fakecg-'));
}

/** The test machine's layout: v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified. */
export async function fakeHybrid(opts: FakeOptions = {}): Promise<Fake> {
  const root = await tmp();
  const cg = path.join(root, 'sys/fs/cgroup');
  const v1: [string, string[]][] = [
    ['cpu', ['cpu']],
    ['cpuacct', ['cpuacct']],
    ['cpuset', ['cpuset']],
    ['memory', ['memory']],
    ['devices', ['devices']],
    ['freezer', ['freezer']],
    ['blkio', ['blkio']],
    ['pids', ['pids']],
    ['systemd', []],
  ];
  const hierarchies: Hierarchy[] = v1.map(([d, c]) => ({ mountPoint: path.join(cg, d), kind: 'v1', controllers: c }));
  hierarchies.push({ mountPoint: path.join(cg, 'unified'), kind: 'v2' });
  const kernel = new FakeKernel(root, hierarchies, { memsw: true, ...opts });
  for (const h of hierarchies) {
    fs.mkdirSync(h.mountPoint, { recursive: true });
    kernel.populate(h.mountPoint, true);
  }
  return { kernel, root, mountinfo: HYBRID_MOUNTINFO, cleanup: () => fsp.rm(root, { recursive: true, force: true }) };
}

/** A v2 unified host like most users have. */
export async function fakeV2(opts: FakeOptions = {}): Promise<Fake> {
  const root = await tmp();
  const cg = path.join(root, 'sys/fs/cgroup');
  const kernel = new FakeKernel(root, [{ mountPoint: cg, kind: 'v2' }], {
    controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
    ...opts,
  });
  fs.mkdirSync(cg, { recursive: true });
  kernel.populate(cg, true);
  return { kernel, root, mountinfo: V2_MOUNTINFO, cleanup: () => fsp.rm(root, { recursive: true, force: true }) };
}
