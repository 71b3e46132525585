import type { CommandModule } from 'yargs';
import { context } from '../common.js';
import { TslxcError } from '../../errors.js';
import { createFromArgs, createOptions } from './create.js';

/** create, then start; a start that fails deletes what create made. */
export async function launchFromArgs(argv: Record<string, unknown>): Promise<void> {
  // Loaded while create waits for its helper runs, not after: off the launch's critical path.
  const starting = import('../../instance/start.js');
  starting.catch(() => {}); // a failed create is the error to report
  const cfg = await createFromArgs(argv);
  const { startInstance } = await starting;
  const ctx = context();
  try {
    await startInstance(ctx, cfg.name, { debug: !!argv.debug });
  } catch (err) {
    // A launch that cannot start leaves nothing behind, as if it had not been asked. An init
    // that died at boot is no exception: its console's last lines are in the error already.
    const { deleteInstance } = await import('../../instance/manage.js');
    await deleteInstance(ctx, cfg.name, { force: true }).catch(() => {});
    const { InitEndedError } = await starting;
    if (err instanceof InitEndedError) throw new TslxcError(`Cannot launch "${cfg.name}"`, err.why, 'it was removed again; launch it again once the cause is fixed');
    throw err;
  }
  console.log(`Launched ${cfg.name}`);
}

const command: CommandModule = {
  command: 'launch <image> <name>',
  describe: 'Create a container from an image and start it',
  builder: (y) => createOptions(y),
  handler: (argv) => launchFromArgs(argv),
};
export default command;
