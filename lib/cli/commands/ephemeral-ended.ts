import { context } from '../common.js';
import { defineCommand } from '../define.js';

/**
 * Run by an ephemeral container's monitor once its init ended for good (lib/instance/ephemeral.ts):
 * deletes it if it is still stopped by then (a start or a stop's own delete may have come between).
 */
export default defineCommand({
  command: 'ephemeral-ended <container>',
  describe: false,
  positionals: { container: { kind: 'container' } },
  run: async (argv) => {
    const { sweepEphemeral } = await import('../../instance/ephemeral.js');
    await sweepEphemeral(context(), [String(argv.container)]);
  },
});
