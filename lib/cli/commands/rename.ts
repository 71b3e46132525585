import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'rename <name> <newname>',
  describe: 'Rename a stopped container',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('newname', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { renameInstance } = await import('../../instance/manage.js');
    await renameInstance(context(), String(argv.name), String(argv.newname));
  },
};
export default command;
