import { TslxcError } from '../../errors.js';

/**
 * exec's options, in one table for both parsers: yargs (the full CLI, with help) and the
 * util.parseArgs fast path (lib/cli/fast.ts), which scripts calling `tslxc exec` in a loop hit.
 */
export interface ExecOptionSpec {
  type: 'boolean' | 'string';
  short?: string;
  aliases?: string[];
  multiple?: boolean;
  describe: string;
}

export const EXEC_OPTIONS: Record<string, ExecOptionSpec> = {
  tty: { type: 'boolean', short: 't', aliases: ['force-interactive'], describe: 'allocate a pseudo-terminal' },
  'no-tty': { type: 'boolean', short: 'T', aliases: ['force-noninteractive'], describe: 'never allocate a pseudo-terminal' },
  env: { type: 'string', multiple: true, describe: 'KEY=VALUE (repeatable)' },
  cwd: { type: 'string', describe: 'working directory inside the container' },
  user: { type: 'string', describe: 'user name or uid to run as' },
};

export interface ExecArgs {
  tty?: boolean;
  'no-tty'?: boolean;
  env?: string[];
  cwd?: string;
  user?: string;
}

/**
 * Whether to give the command a pty, as `lxc exec` decides: -t forces one, -T forbids it, else one
 * when stdin and stdout are terminals. Without one, the helper still never hands a terminal of the
 * caller to the container: it relays it through pipes (native/README.md, attach).
 */
export function wantsTty(a: ExecArgs): boolean {
  if (a['no-tty'] && a.tty) throw new TslxcError('Cannot both force and forbid a terminal', '-t (--force-interactive) and -T (--force-noninteractive) were both given', 'use one of them');
  if (a['no-tty']) return false;
  if (a.tty !== undefined) return a.tty;
  return !!process.stdin.isTTY && !!process.stdout.isTTY;
}
