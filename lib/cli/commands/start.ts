import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { targets } from '../target.js';

export default defineCommand({
  command: 'start <names..>',
  describe: 'Start containers',
  positionals: { names: { kind: 'stopped container' } },
  run: async (argv) => {
    const t = targets(argv.names as string[]);
    if (t.remote) return (await import('../remote/state.js')).remoteState(t.remote, t.names, 'start');
    const { startInstance } = await import('../../instance/start.js');
    const ctx = context();
    for (const name of t.names) await startInstance(ctx, name, { debug: !!argv.debug });
  },
});
