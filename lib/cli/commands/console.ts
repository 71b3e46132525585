import type { CommandModule } from 'yargs';
import { context, setExitCode } from '../common.js';

const command: CommandModule = {
  command: 'console <name>',
  describe: 'Attach to a container\'s console (Ctrl-a q detaches)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).option('show-log', { type: 'boolean', describe: 'print the console log instead of attaching' }),
  handler: async (argv) => {
    const { consoleInstance } = await import('../../instance/exec.js');
    const r = await consoleInstance(context(), String(argv.name), { showLog: !!argv['show-log'] });
    if (typeof r === 'string') process.stdout.write(r);
    else setExitCode(r);
  },
};
export default command;
