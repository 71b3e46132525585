import type { CommandModule } from 'yargs';
import { context, setExitCode } from '../common.js';

const command: CommandModule = {
  command: 'shell <name>',
  describe: 'Open a root login shell in a running container',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).option('user', { type: 'string', describe: 'log in as this user instead of root' }),
  handler: async (argv) => {
    const { shellInstance } = await import('../../instance/exec.js');
    setExitCode(await shellInstance(context(), String(argv.name), { user: argv.user as string | undefined }));
  },
};
export default command;
