import type { CommandModule } from 'yargs';
import { context } from '../common.js';

const command: CommandModule = {
  command: 'wait <name>',
  describe: 'Wait until a container reaches a state',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .option('state', { type: 'string', default: 'running', describe: 'running, stopped, frozen' })
      .option('timeout', { type: 'number', default: 60, describe: 'seconds' })
      .option('ip', { type: 'boolean', describe: 'also wait until it holds an IPv4 address' }),
  handler: async (argv) => {
    const { waitForState } = await import('../../instance/wait.js');
    await waitForState(context(), String(argv.name), String(argv.state), argv.timeout as number, { ip: Boolean(argv.ip) });
  },
};
export default command;
