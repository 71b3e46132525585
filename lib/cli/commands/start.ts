import { context } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'start <names..>',
  describe: 'Start containers',
  positionals: { names: { kind: 'stopped container' } },
  run: async (argv) => {
    const { startInstance } = await import('../../instance/start.js');
    const ctx = context();
    for (const name of argv.names as string[]) await startInstance(ctx, name, { debug: !!argv.debug });
  },
});
