import type { CommandModule } from 'yargs';
import { context } from '../common.js';
import { humanBytes, humanDuration, renderValue } from '../ui/format.js';

const command: CommandModule = {
  command: 'info <name>',
  describe: 'Show a container\'s state, processes and usage',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).option('format', { alias: 'f', choices: ['text', 'json', 'yaml'], default: 'text' }),
  handler: async (argv) => {
    const { instanceInfo } = await import('../../instance/status.js');
    const info = await instanceInfo(context(), String(argv.name));
    if (argv.format !== 'text') {
      console.log(renderValue(info, argv.format as 'json' | 'yaml'));
      return;
    }
    const lines: Array<[string, string | number | undefined]> = [
      ['Name', info.name],
      ['Status', info.status.toUpperCase() + (info.reason ? ` (${info.reason})` : '')],
      ['Image', `${info.image} (${info.config.image.description ?? ''}, ${info.config.image.fingerprint.slice(0, 12)})`],
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
      lines.push(['Memory', `${humanBytes(info.usage.memoryBytes)}${info.usage.memoryPeakBytes ? ` (peak ${humanBytes(info.usage.memoryPeakBytes)})` : ''}`]);
      if (info.usage.cpuTimeNs !== undefined) lines.push(['CPU time', `${(info.usage.cpuTimeNs / 1e9).toFixed(2)}s`]);
      lines.push(['Processes', info.usage.processes]);
    }
    for (const [k, v] of lines) if (v !== undefined && v !== '') console.log(`${k}: ${v}`);
  },
};
export default command;
