import type { OptionDef } from '../define.js';

/** stop's (and restart's) options. */
export const STOP_OPTIONS: Record<string, OptionDef> = {
  force: { type: 'boolean', short: 'f', default: false, describe: 'kill at once instead of asking init to shut down' },
  timeout: { type: 'number', default: 30, describe: 'seconds to wait for a clean shutdown before killing' },
};
