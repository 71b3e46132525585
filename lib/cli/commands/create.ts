import type { Argv, CommandModule } from 'yargs';
import { context, parseKeyValues } from '../common.js';
import { progressReporter } from '../ui/progress.js';

/** Options shared by create and launch. */
export function createOptions<T>(y: Argv<T>) {
  return y
    .positional('image', { type: 'string', demandOption: true, describe: 'image alias, fingerprint or recipe (busybox, debian, path/to/recipe.yaml)' })
    .positional('name', { type: 'string', demandOption: true, describe: 'container name (a DNS label)' })
    .option('hostname', { type: 'string', describe: 'hostname (default: the name)' })
    .option('release', { type: 'string', describe: 'release to build, for recipes that have several (debian: 11, 12, 13)' })
    .option('mirror', { type: 'string', describe: 'package mirror for debootstrap recipes' })
    .option('env', { type: 'string', array: true, describe: 'environment of init, KEY=VALUE (repeatable)' })
    .option('init', { type: 'string', describe: 'init command to run as PID 1 instead of the image\'s' })
    .option('storage', { alias: 's', type: 'string', describe: 'storage pool for the root (default: the profile\'s root disk pool)' })
    .option('profile', { alias: 'p', type: 'string', array: true, describe: 'profiles to apply, in order' })
    .option('config', { alias: 'c', type: 'string', array: true, describe: 'config key, KEY=VALUE (repeatable; see "tslxc config keys")' });
}

export async function createFromArgs(argv: Record<string, unknown>) {
  const { createInstance } = await import('../../instance/create.js');
  const progress = progressReporter();
  try {
    return await createInstance(context(), String(argv.image), String(argv.name), {
      hostname: argv.hostname as string | undefined,
      release: argv.release as string | undefined,
      mirror: argv.mirror as string | undefined,
      environment: parseKeyValues(argv.env, 'environment variable'),
      init: argv.init ? String(argv.init).split(/\s+/).filter(Boolean) : undefined,
      profiles: argv.profile as string[] | undefined,
      storage: argv.storage as string | undefined,
      config: parseKeyValues(argv.config, 'config key'),
      progress,
    });
  } finally {
    progress.done();
  }
}

const command: CommandModule = {
  command: 'create <image> <name>',
  aliases: ['init'],
  describe: 'Create a container from an image (without starting it)',
  builder: (y) => createOptions(y),
  handler: async (argv) => {
    const cfg = await createFromArgs(argv);
    console.log(`Created ${cfg.name}`);
  },
};
export default command;
