import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'delete <names..>',
  aliases: ['rm'],
  describe: 'Delete containers and everything they hold',
  builder: (y) =>
    y.positional('names', { type: 'string', array: true, demandOption: true }).option('force', { type: 'boolean', alias: 'f', default: false, describe: 'stop running containers first (kill)' }),
  handler: async (argv) => {
    const { deleteInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await deleteInstance(context(), name, { force: !!argv.force });
  },
};
export default command;
