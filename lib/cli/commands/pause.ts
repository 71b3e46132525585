import { context } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'pause <names..>',
  aliases: ['freeze'],
  describe: 'Freeze every process of containers',
  positionals: { names: { kind: 'running container' } },
  run: async (argv) => {
    const { freezeInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await freezeInstance(context(), name, true);
  },
});
export const resume = defineCommand({
  command: 'resume <names..>',
  aliases: ['unfreeze'],
  describe: 'Thaw paused containers',
  positionals: { names: { kind: 'running container' } },
  run: async (argv) => {
    const { freezeInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await freezeInstance(context(), name, false);
  },
});
