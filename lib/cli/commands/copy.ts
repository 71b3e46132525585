import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'copy <source> <destination>',
  aliases: ['cp'],
  describe: 'Copy a stopped container or a snapshot (NAME/SNAP) to a new container on the same pool',
  builder: (y) => y.positional('source', { type: 'string', demandOption: true }).positional('destination', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { copyInstance } = await import('../../storage/copy.js');
    const cfg = await copyInstance(context(), String(argv.source), String(argv.destination));
    console.log(`Copied to ${cfg.name}`);
  },
};
export default command;
