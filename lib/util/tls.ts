import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { TslxcError } from '../errors.js';

/**
 * Extra CA certificates only for the runs that connect. node reads every certificate of
 * NODE_EXTRA_CA_CERTS when it starts, before any of our code: with a system bundle set globally
 * (215 KiB of PEM here) that is ~38 ms of every command, a tenth of a launch. bin/tslxc starts
 * create/init/launch without it and keeps its value in TSLXC_NODE_EXTRA_CA_CERTS; most of them
 * use a stored image and never connect. One that has to download or build an image calls this
 * first, before it has made anything: the command runs again, the same way, with the certificates
 * (node cannot add them to a running process), and its exit code is this one's.
 */
export const SAVED_CA_CERTS = 'TSLXC_NODE_EXTRA_CA_CERTS';

export function needTls(): void {
  const saved = process.env[SAVED_CA_CERTS];
  if (!saved || process.env.NODE_EXTRA_CA_CERTS) return;
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: saved };
  delete env[SAVED_CA_CERTS];
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  if (r.error) throw new TslxcError('Cannot run tslxc again with NODE_EXTRA_CA_CERTS', r.error.message);
  const signal = r.signal ? (os.constants.signals as Record<string, number>)[r.signal] : undefined;
  process.exit(r.status ?? 128 + (signal ?? 0));
}
