import type { Argv, CommandModule } from 'yargs';
import { context } from '../common.js';

export function stopOptions<T>(y: Argv<T>) {
  return y
    .positional('names', { type: 'string', array: true, demandOption: true })
    .option('force', { type: 'boolean', default: false, describe: 'kill at once instead of asking init to shut down' })
    .option('timeout', { type: 'number', default: 30, describe: 'seconds to wait for a clean shutdown before killing' });
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
