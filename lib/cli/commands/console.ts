import { context, setExitCode } from '../common.js';
import { defineCommand } from '../define.js';
import { target } from '../target.js';

export default defineCommand({
  command: 'console <name>',
  describe: "Attach to a container's console (Ctrl-a q detaches)",
  positionals: { name: { kind: 'running container' } },
  options: { 'show-log': { type: 'boolean', describe: 'print the console log instead of attaching' } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { noRemoteConsole, remoteConsoleLog } = await import('../remote/console.js');
      if (!argv['show-log']) noRemoteConsole(t.remote);
      process.stdout.write(await remoteConsoleLog(t.remote, t.name));
      return;
    }
    const { consoleInstance } = await import('../../instance/exec.js');
    const r = await consoleInstance(context(), t.name, { showLog: !!argv['show-log'] });
    if (typeof r === 'string') process.stdout.write(r);
    else setExitCode(r);
  },
});
