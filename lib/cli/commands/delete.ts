import { context } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'delete <names..>',
  aliases: ['rm'],
  describe: 'Delete containers and everything they hold',
  positionals: { names: { kind: 'container', describe: 'the containers' } },
  options: { force: { type: 'boolean', short: 'f', describe: 'stop running containers first (kill)' } },
  run: async (argv) => {
    const { deleteInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await deleteInstance(context(), String(name), { force: !!argv.force });
  },
});
