import { context } from '../common.js';
import { yargsCommand, type LeanCommand } from '../lean.js';

export const renameCommand: LeanCommand = {
  command: 'rename <name> <newname>',
  describe: 'Rename a stopped container',
  positionals: { name: 'the container', newname: 'its new name' },
  run: async (argv) => {
    const { renameInstance } = await import('../../instance/manage.js');
    await renameInstance(context(), String(argv.name), String(argv.newname));
  },
};
export default yargsCommand(renameCommand);
