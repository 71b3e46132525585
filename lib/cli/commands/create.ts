import type { Argv, CommandModule } from 'yargs';
import { context, parseKeyValues } from '../common.js';
import { progressReporter } from '../ui/progress.js';
import { CREATE_OPTIONS } from '../options/create.js';

/** Options shared by create and launch (the table is the fast path's too). */
export function createOptions<T>(y: Argv<T>) {
  let out = y
    .positional('image', { type: 'string', demandOption: true, describe: 'image alias, fingerprint or recipe (busybox, debian, path/to/recipe.yaml)' })
    .positional('name', { type: 'string', demandOption: true, describe: 'container name (a DNS label)' });
  for (const [key, o] of Object.entries(CREATE_OPTIONS)) {
    out = out.option(key, { type: o.type as 'string', describe: o.describe, ...(o.short ? { alias: o.short } : {}), ...(o.multiple ? { array: true } : {}) });
  }
  return out;
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
