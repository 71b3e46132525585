import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { target } from '../target.js';
import { TslxcError } from '../../errors.js';
import { humanBytes, humanDuration, renderValue } from '../ui/format.js';

export default defineCommand({
  command: 'info [name]',
  describe: "Show a container's state, processes, usage and limits (--host: the host)",
  positionals: { name: { kind: 'container' } },
  options: {
    host: { type: 'boolean', describe: 'show the host instead (as "tslxc host")' },
    format: { type: 'string', short: 'f', choices: ['text', 'json', 'yaml'], default: 'text' },
  },
  run: async (argv) => {
    if (argv.host) {
      const { printHost } = await import('./host.js');
      return printHost(String(argv.format));
    }
    if (!argv.name) throw new TslxcError('Give a container name, or --host', undefined, 'see "tslxc info --help"');
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteInfo } = await import('../remote/info.js');
      console.log(await remoteInfo(t.remote, t.name, String(argv.format)));
      return;
    }
    argv.name = t.name;
    if (argv.format !== 'text') {
      // The API's object: GET /1.0/instances/NAME?recursion=1 with instance_get_full.
      const { readInstance } = await import('../../api/shapes/instance.js');
      const { instance } = await readInstance(context(), String(argv.name), { full: true, disk: true });
      console.log(renderValue(instance, argv.format as 'json' | 'yaml'));
      return;
    }
    const { instanceInfo } = await import('../../instance/status.js');
    const info = await instanceInfo(context(), String(argv.name));
    if (!info.config) {
      // What a create killed before its config was written leaves: shown as list shows it.
      console.log(`Name: ${info.name}\nStatus: ${info.status.toUpperCase()} (${info.reason})`);
      return;
    }
    const lines: Array<[string, string | number | undefined]> = [
      ['Name', info.name],
      ['Status', info.status.toUpperCase() + (info.reason ? ` (${info.reason})` : '')],
      [
        'Image',
        // An instance made empty (the API's source "none") has no image.
        info.config.image.fingerprint
          ? `${info.image} (${info.config.image.description ?? ''}, ${info.config.image.fingerprint.slice(0, 12)})`
          : '(none: made empty)',
      ],
      ['Hostname', info.hostname],
      ['Created', info.createdAt],
      ['Init', info.config.init.join(' ')],
      ['PID', info.initPid],
      ['Monitor PID', info.monitorPid],
      ['Started', info.startedAt],
      ['Uptime', humanDuration(info.uptimeSeconds)],
      ['Last exit', info.initPid ? undefined : info.lastExit],
      ['Disk', humanBytes(info.diskBytes)],
    ];
    if (info.usage) {
      lines.push([
        'Memory',
        `${humanBytes(info.usage.memoryBytes)}${info.usage.memoryPeakBytes ? ` (peak ${humanBytes(info.usage.memoryPeakBytes)})` : ''}${info.usage.swapBytes !== undefined ? `, swap ${humanBytes(info.usage.swapBytes)}` : ''}`,
      ]);
      if (info.usage.cpuTimeNs !== undefined) lines.push(['CPU time', `${(info.usage.cpuTimeNs / 1e9).toFixed(2)}s`]);
      lines.push(['Processes', info.usage.processes]);
    }
    const { showConfig } = await import('../../instance/configure.js');
    const ex = showConfig(context(), info.name, true).expanded!;
    const limits = Object.keys(ex.config)
      .filter((k) => k.startsWith('limits.'))
      .sort();
    lines.push(['Limits', limits.length ? limits.map((k) => `${k}=${ex.config[k]} (${ex.sources[k]})`).join(', ') : 'none']);
    const { lxcfsSummary } = await import('../../instance/lxcfs-summary.js');
    lines.push(['lxcfs', lxcfsSummary(context(), ex.config, info.initPid)]);
    for (const [k, v] of lines) if (v !== undefined && v !== '') console.log(`${k}: ${v}`);
  },
});
