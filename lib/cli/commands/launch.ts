import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { target } from '../target.js';
import { CREATE_OPTIONS } from '../options/create.js';
import { CREATE_POSITIONALS, createArgs, remoteCreateArgs } from './create.js';

export default defineCommand({
  command: 'launch <image> <name>',
  describe: 'Create a container from an image and start it',
  positionals: CREATE_POSITIONALS,
  options: CREATE_OPTIONS,
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteCreate } = await import('../remote/launch.js');
      await remoteCreate(t.remote, String(argv.image), t.name, { start: true, ...remoteCreateArgs(argv) });
      console.log(`Launched ${t.name}`);
      return;
    }
    const { launchInstance } = await import('../../instance/launch.js');
    const opts = createArgs(argv);
    let created = false;
    const createDone = () => {
      if (!created) opts.progress.done();
      created = true;
    };
    let cfg;
    try {
      // create's progress line is cleared before the start, as for a create alone.
      cfg = await launchInstance(context(), String(argv.image), t.name, { ...opts, created: createDone });
    } finally {
      createDone();
    }
    console.log(`Launched ${cfg.name}`);
  },
});
