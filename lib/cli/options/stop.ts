/** stop's (and restart's) options, one table for yargs and the fast path. */
export const STOP_OPTIONS = {
  force: { type: 'boolean', alias: 'f', default: false, describe: 'kill at once instead of asking init to shut down' },
  timeout: { type: 'number', default: 30, describe: 'seconds to wait for a clean shutdown before killing' },
} as const;
