import type { CommandModule, Options } from 'yargs';
import { context, parseKeyValues, setExitCode } from '../common.js';
import { EXEC_OPTIONS, wantsTty, type ExecArgs } from '../options/exec.js';

const command: CommandModule = {
  command: 'exec <name> [command..]',
  describe: 'Run a command in a running container (its exit code is passed through)',
  builder: (y) => {
    let b = y.positional('name', { type: 'string', demandOption: true }).positional('command', { type: 'string', array: true });
    for (const [key, o] of Object.entries(EXEC_OPTIONS)) {
      const opt: Options = { type: o.type, describe: o.describe, alias: [...(o.short ? [o.short] : []), ...(o.aliases ?? [])] };
      if (o.multiple) opt.array = true;
      b = b.option(key, opt);
    }
    return b;
  },
  handler: async (argv) => {
    const cmd = ((argv.command as string[] | undefined) ?? []).concat(((argv['--'] as string[] | undefined) ?? []).map(String));
    setExitCode(await runExec(String(argv.name), cmd, argv as ExecArgs));
  },
};
export default command;

export async function runExec(name: string, cmd: string[], a: ExecArgs): Promise<number> {
  const { execInstance } = await import('../../instance/exec.js');
  return execInstance(context(), name, cmd.length ? cmd : ['/bin/sh', '-l'], {
    tty: wantsTty(a),
    env: parseKeyValues(a.env, 'environment variable'),
    cwd: a.cwd,
    user: a.user,
  });
}
