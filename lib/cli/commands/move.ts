import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'move <name> [newname]',
  aliases: ['mv'],
  describe: 'Rename a stopped container, or move it (with its snapshots) to another pool with --storage',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .positional('newname', { type: 'string' })
      .option('storage', { alias: 's', type: 'string', describe: 'the pool to move it to' })
      .option('instance-only', { type: 'boolean', describe: 'leave the snapshots out' }),
  handler: async (argv) => {
    const { moveInstance } = await import('../../storage/copy.js');
    const name = String(argv.name);
    await moveInstance(context(), name, (argv.newname as string | undefined) ?? name, { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined });
  },
};
export default command;
