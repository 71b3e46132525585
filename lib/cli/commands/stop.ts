import type { Argv, CommandModule } from 'yargs';
import { context } from '../common.js';
import { STOP_OPTIONS } from '../options/stop.js';

export function stopOptions<T>(y: Argv<T>) {
  return y
    .positional('names', { type: 'string', array: true, demandOption: true })
    .option('force', STOP_OPTIONS.force)
    .option('timeout', STOP_OPTIONS.timeout);
}

const command: CommandModule = {
  command: 'stop <names..>',
  describe: 'Stop containers (the image\'s stop signal, then SIGKILL after --timeout)',
  builder: (y) => stopOptions(y),
  handler: async (argv) => {
    const { stopInstance } = await import('../../instance/stop.js');
    const ctx = context();
    for (const name of argv.names as string[]) await stopInstance(ctx, name, { force: !!argv.force, timeout: argv.timeout as number });
  },
};
export default command;
