import type { OptionDef } from '../define.js';

/** create's and launch's options (both verbs' definitions share them). */
export const CREATE_OPTIONS: Record<string, OptionDef> = {
  hostname: { type: 'string', kind: 'text', describe: 'hostname (default: the name)' },
  release: { type: 'string', kind: 'text', describe: 'release to build, for recipes that have several (debian: 11, 12, 13)' },
  mirror: { type: 'string', kind: 'text', describe: 'package mirror for debootstrap recipes' },
  env: { type: 'string', multiple: true, kind: 'key=value', describe: 'environment of init, KEY=VALUE (repeatable)' },
  init: { type: 'string', kind: 'command', describe: "init command to run as PID 1 instead of the image's" },
  storage: { type: 'string', short: 's', kind: 'pool', describe: "storage pool for the root (default: the profile's root disk pool)" },
  profile: { type: 'string', short: 'p', multiple: true, kind: 'profile', describe: 'profiles to apply, in order' },
  ephemeral: { type: 'boolean', short: 'e', describe: "delete the container when it stops (as LXD's -e)" },
  config: { type: 'string', short: 'c', multiple: true, kind: 'key=value', describe: 'config key, KEY=VALUE (repeatable; see "tslxc config keys")' },
};
