import type { SshOptions } from '../../instance/ssh.js';
import type { OptionDef } from '../define.js';

/** ssh's options (part of ssh's definition, lib/cli/commands/ssh.ts). */
export const SSH_OPTIONS: Record<string, OptionDef> = {
  user: { type: 'string', short: 'l', kind: 'user', describe: 'user to log in as (default root)' },
  tty: { type: 'boolean', short: 't', describe: 'force a pseudo-terminal' },
  'no-tty': { type: 'boolean', short: 'T', describe: 'never allocate a pseudo-terminal' },
  L: { type: 'string', multiple: true, kind: 'text', describe: 'local forward [bind:]port:host:hostport (repeatable)' },
  N: { type: 'boolean', describe: 'run no command: only the forwards, until interrupted' },
  // Strings, checked by sshOptionsFrom: its message is clearer than a parser's NaN.
  port: { type: 'string', short: 'p', kind: 'text', describe: 'sshd port inside the container (default 22)' },
  timeout: { type: 'string', kind: 'text', describe: 'seconds to wait for sshd to answer (default 10)' },
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
