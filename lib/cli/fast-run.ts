import { errorText } from '../errors.js';
import { rerunIfNeedsTls } from './rerun.js';
import { parseCommandLine, type CommandDef } from './define.js';

/**
 * Runs one verb's definition the fast path's way: its arguments (after the verb's words) parsed
 * by the generic parser, then its handler. False: the parser left them to yargs. Apart from the
 * table (lib/cli/fast.ts) so that a verb bundled on its own (scripts/bundle.mjs) takes only this.
 */
export async function runFast(def: CommandDef, args: string[]): Promise<boolean> {
  const argv = parseCommandLine(def, args);
  if (!argv) return false;
  try {
    await def.run(argv);
  } catch (err) {
    reportError(err);
  }
  return true;
}

/**
 * What the full CLI prints for a failure: one line, and the error's exit code. A command that has
 * to connect without the certificates runs again with them instead (lib/util/tls.ts).
 */
function reportError(failure: unknown): void {
  const err = rerunIfNeedsTls(failure);
  if (err === undefined) return;
  process.stderr.write(`Error: ${errorText(err)}\n`);
  process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
}
