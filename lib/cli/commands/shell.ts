import { context, setExitCode } from '../common.js';
import { defineCommand } from '../define.js';

export default defineCommand({
  command: 'shell <name>',
  describe: 'Open a root login shell in a running container',
  positionals: { name: { kind: 'running container' } },
  options: { user: { type: 'string', kind: 'user', describe: 'log in as this user instead of root' } },
  run: async (argv) => {
    const { shellInstance } = await import('../../instance/exec.js');
    setExitCode(await shellInstance(context(), String(argv.name), { user: argv.user as string | undefined }));
  },
});
