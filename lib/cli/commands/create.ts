import { context, parseKeyValues } from '../common.js';
import { defineCommand, type Args, type PositionalDef } from '../define.js';
import { progressReporter } from '../ui/progress.js';
import { CREATE_OPTIONS } from '../options/create.js';
import type { LaunchOptions } from '../../instance/launch.js';

/** Positionals shared by create and launch. */
export const CREATE_POSITIONALS: Record<string, PositionalDef> = {
  image: { kind: 'image', describe: 'image alias, fingerprint or recipe (busybox, debian, path/to/recipe.yaml)' },
  name: { kind: 'new container', describe: 'container name (a DNS label)' },
};

/** The library's create (and launch) options from the parsed arguments, with a progress display. */
export function createArgs(argv: Args): LaunchOptions & { progress: ReturnType<typeof progressReporter> } {
  return {
    hostname: argv.hostname as string | undefined,
    release: argv.release as string | undefined,
    mirror: argv.mirror as string | undefined,
    environment: parseKeyValues(argv.env, 'environment variable'),
    init: argv.init ? String(argv.init).split(/\s+/).filter(Boolean) : undefined,
    profiles: argv.profile as string[] | undefined,
    storage: argv.storage as string | undefined,
    config: parseKeyValues(argv.config, 'config key'),
    ephemeral: !!argv.ephemeral,
    debug: !!argv.debug,
    progress: progressReporter(),
  };
}

export default defineCommand({
  command: 'create <image> <name>',
  aliases: ['init'],
  describe: 'Create a container from an image (without starting it)',
  positionals: CREATE_POSITIONALS,
  options: CREATE_OPTIONS,
  run: async (argv) => {
    const { createInstance } = await import('../../instance/create.js');
    const opts = createArgs(argv);
    let cfg;
    try {
      cfg = await createInstance(context(), String(argv.image), String(argv.name), opts);
    } finally {
      opts.progress.done();
    }
    console.log(`Created ${cfg.name}`);
  },
});
