import { context } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'wait <name>',
  describe: 'Wait until a container reaches a state',
  positionals: { name: { kind: 'container' } },
  options: {
    state: { type: 'string', default: 'running', kind: 'text', describe: 'running, stopped, frozen' },
    timeout: { type: 'number', default: 60, describe: 'seconds' },
    ip: { type: 'boolean', describe: 'also wait until it holds an IPv4 address' },
  },
  run: async (argv) => {
    const { waitForState } = await import('../../instance/wait.js');
    await waitForState(context(), String(argv.name), String(argv.state), argv.timeout as number, { ip: Boolean(argv.ip) });
  },
});
