import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { humanBytes, renderRows, type Format } from '../ui/format.js';
import type { TopRow } from '../../instance/top.js';

/** `tslxc top`: running containers by CPU use; refreshed live on a terminal, one frame otherwise. */
export default defineCommand({
  command: 'top',
  describe: "Show running containers' CPU, memory and processes (live on a terminal; --once for one frame)",
  positionals: {},
  options: {
    once: { type: 'boolean', describe: 'print one frame and exit (the default without a terminal)' },
    interval: { type: 'number', short: 'n', default: 2, describe: 'seconds between frames' },
    format: { type: 'string', short: 'f', choices: ['table', 'json', 'yaml', 'csv'], default: 'table' },
  },
  run: async (argv) => {
    const { topSnapshot } = await import('../../instance/top.js');
    const ctx = context();
    const interval = Math.min(60, Math.max(0.2, Number(argv.interval) || 2)) * 1000;
    const render = (rows: TopRow[]) =>
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'STATE', value: (r) => r.status.toUpperCase() },
          { header: 'CPU%', value: (r) => (r.cpu === undefined ? '' : (r.cpu * 100).toFixed(1)) },
          { header: 'MEMORY', value: (r) => `${humanBytes(r.memoryBytes)}${r.memoryLimitBytes ? ` / ${humanBytes(r.memoryLimitBytes)}` : ''}` },
          { header: 'PROCS', value: (r) => `${r.processes ?? ''}${r.processLimit ? ` / ${r.processLimit}` : ''}` },
        ],
        argv.format as Format,
      );
    const live = !argv.once && process.stdout.isTTY && argv.format === 'table';
    if (!live) {
      console.log(render(await topSnapshot(ctx, Math.min(interval, 1000))));
      return;
    }
    let stop = false;
    process.once('SIGINT', () => (stop = true));
    while (!stop) {
      const rows = await topSnapshot(ctx, interval);
      if (stop) break;
      process.stdout.write(`\x1b[H\x1b[2J${new Date().toLocaleTimeString()}  ${rows.length} running  (Ctrl-C to quit)\n\n${render(rows)}\n`);
    }
  },
});
