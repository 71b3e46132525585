import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { TslxcError } from '../errors.js';
import { NeedsTlsError, SAVED_CA_CERTS } from '../util/tls.js';

/**
 * What the CLI's entry does with a NeedsTlsError (lib/util/tls.ts): this command again, the same
 * way, with the certificates bin/tslxc kept aside. Returns its exit code (128 + the signal that
 * ended it), which becomes this process's.
 */
export function runAgainWithCertificates(): number {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: process.env[SAVED_CA_CERTS] };
  delete env[SAVED_CA_CERTS];
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  if (r.error) throw new TslxcError('Cannot run tslxc again with NODE_EXTRA_CA_CERTS', r.error.message);
  const signal = r.signal ? (os.constants.signals as Record<string, number>)[r.signal] : undefined;
  return r.status ?? 128 + (signal ?? 0);
}

/**
 * Both CLI entries' first step with a failure: a NeedsTlsError runs the command again with the
 * certificates and sets the exit code (undefined: nothing left to report); anything else, or the
 * re-run's own failure, comes back to be reported.
 */
export function rerunIfNeedsTls(err: unknown): unknown {
  if (!(err instanceof NeedsTlsError)) return err;
  try {
    process.exitCode = runAgainWithCertificates();
    return undefined;
  } catch (rerunErr) {
    return rerunErr;
  }
}
