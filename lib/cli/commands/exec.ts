import { context, parseKeyValues, setExitCode } from '../common.js';
import { defineCommand } from '../define.js';
import { target } from '../target.js';
import { EXEC_OPTIONS, wantsTty, type ExecArgs } from '../options/exec.js';

export default defineCommand({
  command: 'exec <name> [command..]',
  describe: 'Run a command in a running container (its exit code is passed through)',
  positionals: { name: { kind: 'running container' }, command: { kind: 'command' } },
  options: EXEC_OPTIONS,
  rest: 'command',
  run: async (argv) => {
    setExitCode(await runExec(String(argv.name), argv.command as string[], argv as ExecArgs));
  },
});

export async function runExec(name: string, cmd: string[], a: ExecArgs): Promise<number> {
  const t = target(name);
  if (t.remote) {
    const { remoteExec } = await import('../remote/exec.js');
    return remoteExec(t.remote, t.name, cmd.length ? cmd : ['/bin/sh', '-l'], {
      tty: wantsTty(a),
      env: parseKeyValues(a.env, 'environment variable'),
      cwd: a.cwd,
      user: a.user,
      group: a.group,
    });
  }
  const { execInstance } = await import('../../instance/exec.js');
  return execInstance(context(), t.name, cmd.length ? cmd : ['/bin/sh', '-l'], {
    tty: wantsTty(a),
    env: parseKeyValues(a.env, 'environment variable'),
    cwd: a.cwd,
    user: a.user,
    group: a.group,
  });
}
