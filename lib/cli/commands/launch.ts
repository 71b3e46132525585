import type { CommandModule } from 'yargs';
import { context } from '../common.js';
import { createFromArgs, createOptions } from './create.js';

const command: CommandModule = {
  command: 'launch <image> <name>',
  describe: 'Create a container from an image and start it',
  builder: (y) => createOptions(y),
  handler: async (argv) => {
    const cfg = await createFromArgs(argv);
    const { startInstance } = await import('../../instance/start.js');
    const ctx = context();
    try {
      await startInstance(ctx, cfg.name, { debug: !!argv.debug });
    } catch (err) {
      // A launch that cannot start leaves nothing behind, as if it had not been asked.
      const { deleteInstance } = await import('../../instance/manage.js');
      await deleteInstance(ctx, cfg.name, { force: true }).catch(() => {});
      throw err;
    }
    console.log(`Launched ${cfg.name}`);
  },
};
export default command;
