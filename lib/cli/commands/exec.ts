import type { CommandModule } from 'yargs';
import { context, parseKeyValues, setExitCode } from '../common.js';

const command: CommandModule = {
  command: 'exec <name> [command..]',
  describe: 'Run a command in a running container (its exit code is passed through)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .positional('command', { type: 'string', array: true })
      .option('t', { alias: ['tty', 'force-interactive'], type: 'boolean', describe: 'allocate a pseudo-terminal' })
      .option('T', { alias: 'force-noninteractive', type: 'boolean', describe: 'never allocate a pseudo-terminal' })
      .option('env', { type: 'string', array: true, describe: 'KEY=VALUE (repeatable)' })
      .option('cwd', { type: 'string', describe: 'working directory inside the container' })
      .option('user', { type: 'string', describe: 'user name or uid to run as' })
      .parserConfiguration({ 'halt-at-non-option': true }),
  handler: async (argv) => {
    const { execInstance } = await import('../../instance/exec.js');
    const cmd = ((argv.command as string[] | undefined) ?? []).concat(((argv['--'] as string[] | undefined) ?? []).map(String));
    const tty = argv.T ? false : argv.t === undefined ? process.stdin.isTTY && process.stdout.isTTY && cmd.length === 0 : !!argv.t;
    const code = await execInstance(context(), String(argv.name), cmd.length ? cmd : ['/bin/sh', '-l'], {
      tty,
      env: parseKeyValues(argv.env, 'environment variable'),
      cwd: argv.cwd as string | undefined,
      user: argv.user as string | undefined,
    });
    setExitCode(code);
  },
};
export default command;
