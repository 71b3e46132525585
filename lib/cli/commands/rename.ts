import { context } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'rename <name> <newname>',
  describe: 'Rename a stopped container',
  positionals: { name: { kind: 'stopped container', describe: 'the container' }, newname: { kind: 'new container', describe: 'its new name' } },
  run: async (argv) => {
    const { renameInstance } = await import('../../instance/manage.js');
    await renameInstance(context(), String(argv.name), String(argv.newname));
  },
});
