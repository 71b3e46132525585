import fs from 'node:fs';
import type { ExecutionContext } from 'ava';
import type { TestEnv } from './env.js';
import { commandLine } from '../../lib/util/proc.js';

/** Host processes whose command line mentions this test's private root (monitors carry it). */
export function processesOf(env: TestEnv): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      let cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      // Empty: a kernel thread, a zombie, or a process in the middle of an execve (a spare's
      // `nice` becoming its shell): only the last is read again, until its arguments are there.
      if (cmd === '' && !kernelThreadOrZombie(d)) cmd = commandLine(Number(d)) ?? '';
      if (cmd.includes(env.root) && !cmd.includes('ava')) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function kernelThreadOrZombie(pid: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state === 'Z' || state === 'X' || ppid === '2' || pid === '2';
  } catch {
    return true;
  }
}

/** Cgroup dirs of this test's prefix in any hierarchy. */
export function cgroupsOf(env: TestEnv): string[] {
  const out: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const p = `/sys/fs/cgroup/${h}/${env.paths.cgroupPrefix}`;
    if (fs.existsSync(p)) {
      for (const c of fs.readdirSync(p, { withFileTypes: true })) if (c.isDirectory()) out.push(`${p}/${c.name}`);
    }
  }
  if (fs.existsSync(`/sys/fs/cgroup/${env.paths.cgroupPrefix}`)) out.push(`/sys/fs/cgroup/${env.paths.cgroupPrefix}`);
  return out;
}

export function mountsOf(env: TestEnv): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(env.root));
}

/** Nothing of one container is left on the host: no processes, cgroups, mounts, run dir. */
export function assertContainerGone(t: ExecutionContext, env: TestEnv, name: string): void {
  const cgs = cgroupsOf(env).filter((c) => c.endsWith(`/${name}`));
  t.deepEqual(cgs, [], `cgroups of ${name} left`);
  t.deepEqual(mountsOf(env), [], 'mounts left');
  t.false(fs.existsSync(`${env.paths.runDir}/containers/${name}/monitor.pid`), 'monitor.pid left');
  t.false(fs.existsSync(`${env.paths.runDir}/containers/${name}/init.pid`), 'init.pid left');
}
