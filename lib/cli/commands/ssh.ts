import type { CommandModule, Options } from 'yargs';
import { context, setExitCode } from '../common.js';
import { SSH_OPTIONS, sshOptionsFrom } from '../options/ssh.js';

const command: CommandModule = {
  command: 'ssh <name> [command..]',
  describe: "Log in to a container's sshd with tslxc's key (a shell, or a command whose exit code is passed through)",
  builder: (y) => {
    let b = y
      .positional('name', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true, describe: 'one word is a shell command line; several are quoted one by one' });
    for (const [key, o] of Object.entries(SSH_OPTIONS)) {
      // -L is repeatable but not an array option: yargs would take the container name after it too.
      const opt: Options = { type: o.type, describe: o.describe, alias: o.short ? [o.short] : [] };
      b = b.option(key, opt);
    }
    return b;
  },
  handler: async (argv) => {
    const { sshInstance } = await import('../../instance/ssh.js');
    const command = ((argv.command as string[] | undefined) ?? []).concat(((argv['--'] as string[] | undefined) ?? []).map(String));
    setExitCode(await sshInstance(context(), String(argv.name), await sshOptionsFrom(argv, command)));
  },
};
export default command;
