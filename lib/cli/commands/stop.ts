import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { targets } from '../target.js';
import { STOP_OPTIONS } from '../options/stop.js';

export default defineCommand({
  command: 'stop <names..>',
  describe: "Stop containers (the image's stop signal, then SIGKILL after --timeout)",
  positionals: { names: { kind: 'running container' } },
  options: STOP_OPTIONS,
  run: async (argv) => {
    const t = targets(argv.names as string[]);
    if (t.remote) return (await import('../remote/state.js')).remoteState(t.remote, t.names, 'stop', { force: !!argv.force, timeout: argv.timeout as number });
    // An ephemeral container is deleted by its stop (lib/instance/ephemeral.ts).
    const { stopInstance } = await import('../../instance/ephemeral.js');
    const ctx = context();
    for (const name of t.names) await stopInstance(ctx, name, { force: !!argv.force, timeout: argv.timeout as number });
  },
});
