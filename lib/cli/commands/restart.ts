import type { CommandModule } from 'yargs';
import { context } from '../common.js';
import { stopOptions } from './stop.js';

const command: CommandModule = {
  command: 'restart <names..>',
  describe: 'Stop and start containers',
  builder: (y) => stopOptions(y),
  handler: async (argv) => {
    const { stopLocked } = await import('../../instance/stop.js');
    const { startLocked } = await import('../../instance/start.js');
    const ctx = context();
    for (const name of argv.names as string[]) {
      await ctx.withInstanceLock(name, async () => {
        await stopLocked(ctx, name, { force: !!argv.force, timeout: argv.timeout as number });
        await startLocked(ctx, name, { debug: !!argv.debug });
      });
    }
  },
};
export default command;
