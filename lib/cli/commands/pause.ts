import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const pause: CommandModule = {
  command: 'pause <names..>',
  aliases: ['freeze'],
  describe: 'Freeze every process of containers',
  builder: (y) => y.positional('names', { type: 'string', array: true, demandOption: true }),
  handler: async (argv) => {
    const { freezeInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await freezeInstance(context(), name, true);
  },
};
export const resume: CommandModule = {
  command: 'resume <names..>',
  aliases: ['unfreeze'],
  describe: 'Thaw paused containers',
  builder: (y) => y.positional('names', { type: 'string', array: true, demandOption: true }),
  handler: async (argv) => {
    const { freezeInstance } = await import('../../instance/manage.js');
    for (const name of argv.names as string[]) await freezeInstance(context(), name, false);
  },
};
export default pause;
