import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'copy <source> <destination>',
  aliases: ['cp'],
  describe: 'Copy a container (a running one frozen for the copy; with its snapshots) or a snapshot (NAME/SNAP) to a new container',
  builder: (y) =>
    y
      .positional('source', { type: 'string', demandOption: true })
      .positional('destination', { type: 'string', demandOption: true })
      .option('storage', { alias: 's', type: 'string', describe: 'the pool of the copy (default: the source\'s)' })
      .option('instance-only', { type: 'boolean', describe: 'leave the snapshots out' }),
  handler: async (argv) => {
    const { copyInstance } = await import('../../storage/copy.js');
    const cfg = await copyInstance(context(), String(argv.source), String(argv.destination), { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined });
    console.log(`Copied to ${cfg.name}`);
  },
};
export default command;
