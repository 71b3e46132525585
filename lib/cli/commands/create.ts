import { context, parseKeyValues } from '../common.js';
import { defineCommand, type Args, type PositionalDef } from '../define.js';
import { target } from '../target.js';
import { TslxcError } from '../../errors.js';
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

/** What create and launch pass to a remote: profiles and config keys; the options only this host builds with are refused. */
export function remoteCreateArgs(argv: Args): { profiles?: string[]; config: Record<string, string> } {
  for (const o of ['hostname', 'release', 'mirror', 'env', 'init', 'storage'])
    if (argv[o] !== undefined) throw new TslxcError(`--${o} is not supported for a remote container`, undefined, 'use --config KEY=VALUE and profiles');
  return { profiles: argv.profile as string[] | undefined, config: parseKeyValues(argv.config, 'config key') };
}

export default defineCommand({
  command: 'create <image> <name>',
  aliases: ['init'],
  describe: 'Create a container from an image (without starting it)',
  positionals: CREATE_POSITIONALS,
  options: CREATE_OPTIONS,
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteCreate } = await import('../remote/launch.js');
      await remoteCreate(t.remote, String(argv.image), t.name, { start: false, ...remoteCreateArgs(argv) });
      console.log(`Created ${t.name}`);
      return;
    }
    const { createInstance } = await import('../../instance/create.js');
    const opts = createArgs(argv);
    let cfg;
    try {
      cfg = await createInstance(context(), String(argv.image), t.name, opts);
    } finally {
      opts.progress.done();
    }
    console.log(`Created ${cfg.name}`);
  },
});
