import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { humanBytes, renderValue, table } from '../ui/format.js';
import type { LimitCheck } from '../../host/sysctl.js';

/** `tslxc host` (also `tslxc info --host`): the host's kernel, resources and features. */
export async function printHost(format: string): Promise<void> {
  const { hostReport } = await import('../../admin/report.js');
  const r = await hostReport(context().paths);
  if (format !== 'text') {
    console.log(renderValue(r, format as 'json' | 'yaml'));
    return;
  }
  const f = r.features;
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  // Who uses it: it keeps running after the last container, as LXD's service does, until stopped.
  let lxcfsRunning = '';
  if (f.lxcfs.state === 'running') {
    const { lxcfsUsers } = await import('../../host/lxcfs.js');
    const users = lxcfsUsers(context().paths).length;
    lxcfsRunning = users
      ? `running (${f.lxcfs.path}), bound over /proc files in ${users} running container${users === 1 ? '' : 's'}`
      : `running (${f.lxcfs.path}), used by no running container ("tslxc admin lxcfs stop" stops it)`;
  }
  const lines: Array<[string, string]> = [
    ['Hostname', r.hostname],
    ['Kernel', r.kernel],
    ['Distribution', r.distribution],
    ['Architecture', r.architecture],
    ['CPUs', `${r.cpu.count} (${r.cpu.online})${r.cpu.model ? `, ${r.cpu.model}` : ''}`],
    ['Memory', `${humanBytes(r.memory.totalBytes)} (available ${humanBytes(r.memory.availableBytes)}, swap ${humanBytes(r.memory.swapTotalBytes)})`],
    ['cgroups', `${f.cgroup.version}${f.cgroup.hybrid ? ' (hybrid, cgroup2 beside)' : ''}: ${f.cgroup.controllers.join(' ')}`],
  ];
  for (const s of r.storage) {
    lines.push([`Storage ${s.name}`, `${s.driver ? `${s.driver}, ` : ''}${s.path}: ${humanBytes(s.freeBytes)} free of ${humanBytes(s.sizeBytes)}`]);
  }
  lines.push(
    ['overlay', yes(f.overlay)],
    ['btrfs', yes(f.btrfs)],
    ['idmapped mounts', yes(f.idmappedMounts)],
    [
      'lxcfs',
      {
        running: lxcfsRunning,
        dead: 'died: the next start of a container restarts it',
        stopped: 'installed; started with the first container',
        'not installed': "not installed (containers see the host's /proc/meminfo, /proc/cpuinfo, uptime)",
      }[f.lxcfs.state],
    ],
  );
  for (const [k, v] of lines) console.log(`${k}: ${v}`);
  console.log('');
  console.log(limitsText(r.limits));
}

/** The host limits containers share: current, LXD's value, in use, and why each matters. */
export function limitsText(limits: LimitCheck[], hint = true): string {
  const n = (v: number | undefined) => (v === undefined ? '-' : String(v));
  const rows = limits.map((l) => [l.key, n(l.current), n(l.recommended), n(l.inUse), l.status === 'low' ? 'LOW' : l.status, l.reason]);
  const low = limits.filter((l) => l.status === 'low').length;
  const head = low
    ? `Host limits containers share: ${low} below LXD's recommended values${hint ? ' (raise them with "tslxc admin init --limits-only")' : ''}`
    : "Host limits containers share: all at or above LXD's recommended values";
  return `${head}\n${table(['KEY', 'CURRENT', 'RECOMMENDED', 'IN USE', 'STATUS', 'WHY'], rows)}`;
}

const command = defineCommand({
  command: 'host',
  describe: 'Show the host: kernel, distribution, cgroups, CPUs, memory, storage, features, the limits containers share',
  positionals: {},
  options: { format: { type: 'string', short: 'f', choices: ['text', 'json', 'yaml'], default: 'text' } },
  run: async (argv) => printHost(String(argv.format)),
});
export default command;
