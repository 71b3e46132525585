import type { Argv } from 'yargs';
import { Context } from '../state/context.js';
import { thawIfFrozen } from '../cgroup/context.js';
import { FORMATS, type Format } from './options/format.js';

export { parseKeyValues } from '../util/keyvalue.js';

/** Options every command has. */
export interface GlobalArgs {
  debug?: boolean;
}

/** The Context of a command: it thaws what a killed snapshot left frozen when it takes a lock. */
export function context(): Context {
  return new Context(undefined, { thawIfFrozen });
}

export function withFormat<T>(y: Argv<T>, def: Format = 'table') {
  return y.option('format', { alias: 'f', choices: FORMATS, default: def, describe: 'output format' });
}

/** Set by handlers whose command's exit code is not 0/1 (exec passes the command's through). */
export function setExitCode(code: number): void {
  process.exitCode = code;
}

let graceMs: number | undefined;

/**
 * Asks the CLI's entry to end the process that long after the command returns: for a server
 * whose leftovers (a client that never closes its side) must not keep it up.
 */
export function exitAfterCommand(ms: number): void {
  graceMs = ms;
}

export function exitGraceMs(): number | undefined {
  return graceMs;
}
