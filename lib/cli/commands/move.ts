import { context } from '../common.js';
import { yargsCommand, type LeanCommand } from '../lean.js';

export const moveCommand: LeanCommand = {
  command: 'move <name> [newname]',
  aliases: ['mv'],
  describe: 'Rename a stopped container, or move it (with its snapshots) to another pool with --storage',
  positionals: { name: 'the container', newname: 'its new name (default: the same)' },
  options: {
    storage: { type: 'string', short: 's', describe: 'the pool to move it to' },
    'instance-only': { type: 'boolean', describe: 'leave the snapshots out' },
  },
  run: async (argv) => {
    const { moveInstance } = await import('../../storage/copy.js');
    const name = String(argv.name);
    await moveInstance(context(), name, (argv.newname as string | undefined) ?? name, { storage: argv.storage as string | undefined, instanceOnly: argv['instance-only'] as boolean | undefined });
  },
};
export default yargsCommand(moveCommand);
