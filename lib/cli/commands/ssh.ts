import { context, setExitCode } from '../common.js';
import { defineCommand } from '../define.js';
import { SSH_OPTIONS, sshOptionsFrom } from '../options/ssh.js';

export default defineCommand({
  command: 'ssh <name> [command..]',
  describe: "Log in to a container's sshd with tslxc's key (a shell, or a command whose exit code is passed through)",
  positionals: {
    name: { kind: 'running container' },
    command: { kind: 'command', describe: 'one word is a shell command line; several are quoted one by one' },
  },
  options: SSH_OPTIONS,
  rest: 'command',
  run: async (argv) => {
    const { sshInstance } = await import('../../instance/ssh.js');
    setExitCode(await sshInstance(context(), String(argv.name), await sshOptionsFrom(argv, argv.command as string[])));
  },
});
