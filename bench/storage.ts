import type { BenchEnv } from './env.js';
import type { LxdDaemon } from './lxd.js';
import { failure, waitForSystemd } from './measure.js';
import { Interrupted, now, pause, type RunResult } from './proc.js';
import { summarize, type Summary } from './stats.js';
import { preparing } from '../lib/storage/spares.js';

/**
 * Issue #4: per storage driver, what a user waits for, tslxc beside LXD 5.0 in the same run:
 *
 *   launch    `launch IMAGE NAME -s POOL` of the cached Debian image, until systemd inside says
 *             running (the image is already in the store, and on btrfs already in the pool: the
 *             warm-up run puts it there for both tools)
 *   copy      `copy NAME NAME-copy` of the stopped container, same pool
 *   snapshot  `snapshot` of the stopped container
 *   restore   `restore` of that snapshot (stopped)
 *
 * The peers run in rotating order, one full cycle each per round. LXD's containers are
 * unprivileged by default, as tslxc's are (the like-for-like rows); LXD also runs with
 * security.privileged=true, a second row for each driver.
 */

export const STEPS = ['launch', 'launchCmd', 'stop', 'copy', 'snapshot', 'restore'] as const;
export type Step = (typeof STEPS)[number];

export interface StoragePeer {
  key: string;
  tool: 'tslxc' | 'LXD';
  driver: string;
  privileged?: boolean;
  commands: Record<string, string>;
  launch(name: string): Promise<RunResult>;
  probe(name: string): Promise<RunResult>;
  exec(name: string, cmd: string[]): Promise<RunResult>;
  stop(name: string): Promise<RunResult>;
  copy(src: string, dst: string): Promise<RunResult>;
  snapshot(name: string, snap: string): Promise<RunResult>;
  restore(name: string, snap: string): Promise<RunResult>;
  remove(name: string): Promise<RunResult>;
  /** Called before a name is first used (cleanup bookkeeping). */
  claim(name: string): void;
  /** What the tool logged about a container that failed to start, if it keeps a log. */
  why?(name: string): Promise<string>;
  /** Distinguishes two peers of one tool and driver in container names. */
  tag?: string;
  /**
   * Waits for work the launch left running in the background (tslxc dir: the spare root for the
   * next launch) so that it never overlaps a later timed step or another peer; returns how long
   * that work went on after systemd was running.
   */
  settle?(): Promise<number>;
}

export interface StorageResults {
  runs: number;
  peers: Record<
    string,
    {
      tool: string;
      driver: string;
      privileged?: boolean;
      commands: Record<string, string>;
      samples: Record<Step, number[]>;
      background?: number[];
      summary: Partial<Record<Step, Summary>>;
      states: Record<string, number>;
      failures: string[];
      warmup?: Partial<Record<Step, number>> & { state?: string; failedUnits?: string[]; interfaces?: string[] };
    }
  >;
  notes: string[];
}

/** tslxc on one pool; `spares` says whether the pool is a dir pool with spare roots (the default there). */
export function tslxcStoragePeer(env: BenchEnv, driver: string, pool: string, spares = driver === 'dir'): StoragePeer {
  const ok = (r: RunResult) => r;
  const settle = async () => {
    const t0 = now();
    while (preparing({ stateDir: env.stateDir, runDir: env.runDir, cacheDir: '', cgroupPrefix: '' }, pool).length) await pause(20);
    return now() - t0;
  };
  return {
    key: `tslxc ${driver}${driver === 'dir' && !spares ? ' (no spare)' : ''}`,
    ...(driver === 'dir' ? { tag: spares ? '' : 'n' } : {}),
    ...(spares ? { settle } : {}),
    tool: 'tslxc',
    driver,
    commands: {
      launch: `tslxc launch debian NAME -s ${pool}`,
      probe: 'tslxc exec NAME -- systemctl is-system-running --wait',
      stop: 'tslxc stop NAME',
      copy: 'tslxc copy NAME NAME-copy',
      snapshot: 'tslxc snapshot create NAME s1',
      restore: 'tslxc snapshot restore NAME s1',
    },
    launch: async (n) => ok(await env.tslxc(['launch', 'debian', n, '-s', pool], { timeoutMs: 300_000 })),
    probe: (n) => env.tslxc(['exec', n, '--', 'systemctl', 'is-system-running', '--wait']),
    exec: (n, cmd) => env.tslxc(['exec', n, '--', ...cmd]),
    stop: (n) => env.tslxc(['stop', n]),
    copy: (a, b) => env.tslxc(['copy', a, b], { timeoutMs: 300_000 }),
    snapshot: (n, s) => env.tslxc(['snapshot', 'create', n, s], { timeoutMs: 300_000 }),
    restore: (n, s) => env.tslxc(['snapshot', 'restore', n, s], { timeoutMs: 300_000 }),
    remove: (n) => env.tslxc(['delete', '--force', n], { timeoutMs: 300_000 }),
    claim: () => undefined,
  };
}

export function lxdStoragePeer(env: BenchEnv, lxd: LxdDaemon, driver: string, pool: string, image: string, privileged: boolean): StoragePeer {
  const cfg = privileged ? ['-c', 'security.privileged=true'] : [];
  return {
    key: `LXD ${driver}${privileged ? ' privileged' : ''}`,
    tool: 'LXD',
    driver,
    privileged,
    commands: {
      launch: `lxc launch ${image} NAME -s ${pool} -q${privileged ? ' -c security.privileged=true' : ''}`,
      probe: 'lxc exec NAME -- systemctl is-system-running --wait',
      stop: 'lxc stop NAME',
      copy: 'lxc copy NAME NAME-copy',
      snapshot: 'lxc snapshot NAME s1',
      restore: 'lxc restore NAME s1',
    },
    launch: (n) => lxd.lxc(['launch', image, n, '-s', pool, '-q', ...cfg]),
    probe: (n) => lxd.lxc(['exec', n, '--', 'systemctl', 'is-system-running', '--wait']),
    exec: (n, cmd) => lxd.lxc(['exec', n, '--', ...cmd]),
    stop: (n) => lxd.lxc(['stop', n]),
    copy: (a, b) => lxd.lxc(['copy', a, b]),
    snapshot: (n, s) => lxd.lxc(['snapshot', n, s]),
    restore: (n, s) => lxd.lxc(['restore', n, s]),
    remove: (n) => lxd.lxc(['delete', '--force', n]),
    why: (n) => lxd.instanceLog(n),
    claim: (n) => {
      lxd.instances.add(n);
      env.cgroupNames.add(`lxc.payload.${n}`);
      env.cgroupNames.add(`lxc.monitor.${n}`);
    },
  };
}

async function launchFailure(p: StoragePeer, name: string, r: RunResult): Promise<Error> {
  const e = failure(p.commands.launch.replace('NAME', name), r);
  const why = await p.why?.(name).catch(() => '');
  if (why) e.message += ` (log: ${why})`;
  return e;
}

async function timed(what: string, f: () => Promise<RunResult>): Promise<number> {
  const r = await f();
  if (r.code !== 0) throw failure(what, r);
  return r.ms;
}

/** One cycle on a fresh container: launch → running, stop, copy, snapshot, restore; then delete. */
async function cycle(p: StoragePeer, name: string): Promise<Record<Step, number> & { state: string; background?: number }> {
  p.claim(name);
  p.claim(`${name}-copy`);
  const t0 = now();
  const l = await p.launch(name);
  const launchCmd = now() - t0;
  if (l.code !== 0) throw await launchFailure(p, name, l);
  const settled = await waitForSystemd(() => p.probe(name), p.commands.probe.replace('NAME', name), t0);
  const background = p.settle ? await p.settle() : undefined;
  await pause(300);
  const stop = await timed(`${p.key}: stop ${name}`, () => p.stop(name));
  await pause(300);
  const copy = await timed(`${p.key}: copy ${name}`, () => p.copy(name, `${name}-copy`));
  await timed(`${p.key}: delete ${name}-copy`, () => p.remove(`${name}-copy`));
  await pause(300);
  const snapshot = await timed(`${p.key}: snapshot ${name}`, () => p.snapshot(name, 's1'));
  await pause(300);
  const restore = await timed(`${p.key}: restore ${name}`, () => p.restore(name, 's1'));
  await timed(`${p.key}: delete ${name}`, () => p.remove(name));
  return { launch: settled.ms, launchCmd, stop, copy, snapshot, restore, state: settled.state, background };
}

export async function measureStorage(peers: StoragePeer[], runs: number, prefix: string, log: (s: string) => void): Promise<StorageResults> {
  const res: StorageResults = { runs, peers: {}, notes: [] };
  for (const p of peers) {
    res.peers[p.key] = {
      tool: p.tool,
      driver: p.driver,
      privileged: p.privileged,
      commands: p.commands,
      samples: Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]>,
      summary: {},
      states: {},
      failures: [],
    };
  }
  const nameOf = (p: StoragePeer, i: number) =>
    `${prefix}-${p.tool === 'tslxc' ? 't' : 'l'}${p.driver.slice(0, 3)}${p.privileged ? 'p' : ''}${p.tag ?? ''}-${i < 0 ? 'w' : i}`;

  // Warm-up: the first launch on a pool puts the image there (LXD's image volume on btrfs, tslxc's
  // image subvolume) and the first boot makes SSH host keys: shown, not counted.
  for (const p of peers) {
    const name = nameOf(p, -1);
    log(`storage: ${p.key}: warm-up cycle`);
    p.claim(name);
    const t0 = now();
    const l = await p.launch(name);
    if (l.code !== 0) throw await launchFailure(p, name, l);
    const settled = await waitForSystemd(() => p.probe(name), p.commands.probe, t0);
    await p.settle?.();
    const failed = await p.exec(name, ['systemctl', '--failed', '--no-legend', '--plain']);
    const nets = await p.exec(name, ['ls', '/sys/class/net']);
    const interfaces = nets.stdout.split(/\s+/).filter(Boolean);
    res.peers[p.key].warmup = {
      launch: settled.ms,
      state: settled.state,
      failedUnits: failed.stdout
        .split('\n')
        .map((x) => x.trim().split(/\s+/)[0])
        .filter(Boolean),
      interfaces,
    };
    if (interfaces.join(' ') !== 'lo') throw new Error(`${p.key}: the container has interfaces besides lo: ${interfaces.join(' ')}`);
    log(`storage: ${p.key}: first launch ${Math.round(settled.ms)} ms → ${settled.state}`);
    const r = await p.remove(name);
    if (r.code !== 0) throw failure(`${p.key}: delete ${name}`, r);
  }

  for (let i = 0; i < runs; i++) {
    const order = peers.map((_, k) => peers[(k + i) % peers.length]);
    for (const p of order) {
      const pr = res.peers[p.key];
      const name = nameOf(p, i);
      try {
        const c = await cycle(p, name);
        for (const s of STEPS) pr.samples[s].push(c[s]);
        if (c.background !== undefined) (pr.background ??= []).push(c.background);
        pr.states[c.state] = (pr.states[c.state] ?? 0) + 1;
        log(
          `storage: ${p.key} run ${i + 1}/${runs}: launch→${c.state} ${Math.round(c.launch)} ms, copy ${Math.round(c.copy)} ms, snapshot ${Math.round(c.snapshot)} ms, restore ${Math.round(c.restore)} ms`,
        );
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        pr.failures.push((e as Error).message);
        log(`storage: ${p.key} run ${i + 1}: FAILED: ${(e as Error).message}`);
        await p.remove(`${name}-copy`).catch(() => undefined);
        await p.remove(name).catch(() => undefined);
      }
      await pause(500);
    }
  }
  for (const p of peers) {
    const pr = res.peers[p.key];
    for (const s of STEPS) if (pr.samples[s].length) pr.summary[s] = summarize(pr.samples[s]);
  }
  return res;
}
