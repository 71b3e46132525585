import type { CommandModule } from 'yargs';
import { context, setExitCode } from '../common.js';

const command: CommandModule = {
  command: 'ssh <name> [command..]',
  describe: "Log in to a container's sshd with tslxc's key (a shell, or a command whose exit code is passed through)",
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true, describe: 'one word is a shell command line; several are quoted one by one' })
      .option('user', { alias: 'l', type: 'string', describe: 'user to log in as (default root)' })
      .option('tty', { alias: 't', type: 'boolean', describe: 'force a pseudo-terminal' })
      .option('no-tty', { alias: 'T', type: 'boolean', describe: 'never allocate a pseudo-terminal' })
      .option('L', { type: 'string', describe: 'local forward [bind:]port:host:hostport (repeatable)' })
      .option('N', { type: 'boolean', describe: 'run no command: only the forwards, until interrupted' })
      .option('port', { alias: 'p', type: 'number', describe: 'sshd port inside the container (default 22)' })
      .option('timeout', { type: 'number', describe: 'seconds to wait for sshd to answer (default 10)' })
      .option('forget-host-key', { type: 'boolean', describe: 'forget the host key tslxc learnt for this container, and learn the one it offers now' }),
  handler: async (argv) => {
    const { sshInstance } = await import('../../ssh/client.js');
    const { parseLocalForward } = await import('../../ssh/forward.js');
    const command = ((argv.command as string[] | undefined) ?? []).concat(((argv['--'] as string[] | undefined) ?? []).map(String));
    const forwards = ([] as unknown[]).concat(argv.L ?? []).map((s) => parseLocalForward(String(s)));
    const tty = argv['no-tty'] ? false : (argv.tty as boolean | undefined);
    setExitCode(
      await sshInstance(context(), String(argv.name), {
        user: argv.user as string | undefined,
        command,
        tty,
        forwards,
        noCommand: Boolean(argv.N),
        port: argv.port as number | undefined,
        timeout: argv.timeout as number | undefined,
        forgetHostKey: Boolean(argv['forget-host-key']),
      }),
    );
  },
};
export default command;
