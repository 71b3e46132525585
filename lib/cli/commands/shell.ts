import { context, setExitCode } from '../common.js';
import { defineCommand } from '../define.js';
import { target } from '../target.js';

export default defineCommand({
  command: 'shell <name>',
  describe: 'Open a root login shell in a running container',
  positionals: { name: { kind: 'running container' } },
  options: { user: { type: 'string', kind: 'user', describe: 'log in as this user instead of root' } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      // As lxc's shell alias: a login shell through su, with a terminal when there is one.
      const { remoteExec } = await import('../remote/exec.js');
      const user = argv.user === undefined ? [] : [String(argv.user)];
      setExitCode(await remoteExec(t.remote, t.name, ['su', '-l', ...user], { tty: !!process.stdin.isTTY && !!process.stdout.isTTY }));
      return;
    }
    const { shellInstance } = await import('../../instance/exec.js');
    setExitCode(await shellInstance(context(), t.name, { user: argv.user as string | undefined }));
  },
});
