import type { SshOptions } from '../../instance/ssh.js';

/**
 * ssh's options, one table for yargs (help, errors) and the fast path (lib/cli/fast.ts): loading
 * yargs costs about as much as the whole SSH handshake, and `tslxc ssh c -- CMD` is run in loops.
 */
export interface SshOptionSpec {
  type: 'boolean' | 'string';
  short?: string;
  multiple?: boolean;
  number?: boolean;
  describe: string;
}

export const SSH_OPTIONS: Record<string, SshOptionSpec> = {
  user: { type: 'string', short: 'l', describe: 'user to log in as (default root)' },
  tty: { type: 'boolean', short: 't', describe: 'force a pseudo-terminal' },
  'no-tty': { type: 'boolean', short: 'T', describe: 'never allocate a pseudo-terminal' },
  L: { type: 'string', multiple: true, describe: 'local forward [bind:]port:host:hostport (repeatable)' },
  N: { type: 'boolean', describe: 'run no command: only the forwards, until interrupted' },
  port: { type: 'string', short: 'p', number: true, describe: 'sshd port inside the container (default 22)' },
  timeout: { type: 'string', number: true, describe: 'seconds to wait for sshd to answer (default 10)' },
  'forget-host-key': { type: 'boolean', describe: 'forget the host key tslxc learnt for this container, and learn the one it offers now' },
};

/** Parsed values (from either parser) into the library's options; throws on a bad number or -L. */
export async function sshOptionsFrom(v: Record<string, unknown>, command: string[]): Promise<SshOptions> {
  const { parseLocalForward } = await import('../../ssh/forward.js');
  const { TslxcError } = await import('../../errors.js');
  const num = (key: string): number | undefined => {
    if (v[key] === undefined) return undefined;
    const n = Number(v[key]);
    if (!Number.isFinite(n) || n <= 0) throw new TslxcError(`Invalid --${key} "${v[key]}"`, 'expected a positive number');
    return n;
  };
  return {
    user: v.user as string | undefined,
    command,
    tty: v['no-tty'] ? false : (v.tty as boolean | undefined),
    forwards: ([] as unknown[]).concat(v.L ?? []).map((s) => parseLocalForward(String(s))),
    noCommand: Boolean(v.N),
    port: num('port'),
    timeout: num('timeout'),
    forgetHostKey: Boolean(v['forget-host-key']),
  };
}
