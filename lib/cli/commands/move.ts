import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { placementArgs, placementOptions } from './copy.js';

export default defineCommand({
  command: 'move <name> [newname]',
  aliases: ['mv'],
  describe: 'Rename a stopped container, or move it (with its snapshots) to another pool with --storage',
  positionals: {
    name: { kind: 'stopped container', describe: 'the container' },
    newname: { kind: 'new container', describe: 'its new name (default: the same)' },
  },
  options: placementOptions('the pool to move it to'),
  run: async (argv) => {
    const { moveInstance } = await import('../../instance/copy.js');
    const name = String(argv.name);
    await moveInstance(context(), name, (argv.newname as string | undefined) ?? name, placementArgs(argv));
  },
});
