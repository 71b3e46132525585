import type { ExecOptionSpec } from './exec.js';

/**
 * create's and launch's options, in one table for both parsers: yargs (the full CLI, with help)
 * and the util.parseArgs fast path (lib/cli/fast.ts), which skips loading yargs for a launch.
 */
export const CREATE_OPTIONS: Record<string, ExecOptionSpec> = {
  hostname: { type: 'string', describe: 'hostname (default: the name)' },
  release: { type: 'string', describe: 'release to build, for recipes that have several (debian: 11, 12, 13)' },
  mirror: { type: 'string', describe: 'package mirror for debootstrap recipes' },
  env: { type: 'string', multiple: true, describe: 'environment of init, KEY=VALUE (repeatable)' },
  init: { type: 'string', describe: 'init command to run as PID 1 instead of the image\'s' },
  storage: { type: 'string', short: 's', describe: 'storage pool for the root (default: the profile\'s root disk pool)' },
  profile: { type: 'string', short: 'p', multiple: true, describe: 'profiles to apply, in order' },
  config: { type: 'string', short: 'c', multiple: true, describe: 'config key, KEY=VALUE (repeatable; see "tslxc config keys")' },
};
