import { TslxcError } from '../../errors.js';
import type { OptionDef } from '../define.js';

/**
 * exec's options: part of exec's definition (lib/cli/commands/exec.ts), and the source of the
 * native helper's exec grammar (scripts/gen-cli-header.mjs generates native/build/gen-cli.h from
 * this table at build), so it imports nothing but types and errors.
 */
export const EXEC_OPTIONS: Record<string, OptionDef> = {
  tty: { type: 'boolean', short: 't', aliases: ['force-interactive'], describe: 'allocate a pseudo-terminal' },
  'no-tty': { type: 'boolean', short: 'T', aliases: ['force-noninteractive'], describe: 'never allocate a pseudo-terminal' },
  env: { type: 'string', multiple: true, kind: 'key=value', describe: 'KEY=VALUE (repeatable)' },
  cwd: { type: 'string', kind: 'path', describe: 'working directory inside the container' },
  user: { type: 'string', kind: 'user', describe: 'user name or uid to run as' },
  group: { type: 'string', kind: 'text', describe: "group name or gid to run as (that group alone; default: the user's groups)" },
};

export interface ExecArgs {
  tty?: boolean;
  'no-tty'?: boolean;
  env?: string[];
  cwd?: string;
  user?: string;
  group?: string;
}

/**
 * Whether to give the command a pty, as `lxc exec` decides: -t forces one, -T forbids it, else one
 * when stdin and stdout are terminals. Without one, the helper still never hands a terminal of the
 * caller to the container: it relays it through pipes (native/README.md, attach).
 */
export function wantsTty(a: ExecArgs): boolean {
  if (a['no-tty'] && a.tty)
    throw new TslxcError(
      'Cannot both force and forbid a terminal',
      '-t (--force-interactive) and -T (--force-noninteractive) were both given',
      'use one of them',
    );
  if (a['no-tty']) return false;
  if (a.tty !== undefined) return a.tty;
  return !!process.stdin.isTTY && !!process.stdout.isTTY;
}
