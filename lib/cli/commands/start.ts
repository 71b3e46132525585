import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'start <names..>',
  describe: 'Start containers',
  builder: (y) => y.positional('names', { type: 'string', array: true, demandOption: true }),
  handler: async (argv) => {
    const { startInstance } = await import('../../instance/start.js');
    const ctx = context();
    for (const name of argv.names as string[]) await startInstance(ctx, name, { debug: !!argv.debug });
  },
};
export default command;
