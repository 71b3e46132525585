import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { targets } from '../target.js';
import { STOP_OPTIONS } from '../options/stop.js';

export default defineCommand({
  command: 'restart <names..>',
  describe: 'Stop and start containers',
  positionals: { names: { kind: 'container' } },
  options: STOP_OPTIONS,
  run: async (argv) => {
    const t = targets(argv.names as string[]);
    if (t.remote)
      return (await import('../remote/state.js')).remoteState(t.remote, t.names, 'restart', { force: !!argv.force, timeout: argv.timeout as number });
    const { stopLocked } = await import('../../instance/stop.js');
    const { startLocked } = await import('../../instance/start.js');
    const ctx = context();
    for (const name of t.names) {
      await ctx.withInstanceLock(name, async () => {
        await stopLocked(ctx, name, { force: !!argv.force, timeout: argv.timeout as number });
        await startLocked(ctx, name, { debug: !!argv.debug });
      });
    }
  },
});
