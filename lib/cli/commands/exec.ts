import { parseKeyValues } from '../../util/keyvalue.js';
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
    // common.js's setExitCode, and the rest of common.js, would load the local state's code (and
    // the YAML parser) on every exec: a remote one never runs it.
    process.exitCode = await runExec(String(argv.name), argv.command as string[], argv as ExecArgs);
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
  const [{ execInstance }, { context }] = await Promise.all([import('../../instance/exec.js'), import('../common.js')]);
  return execInstance(context(), t.name, cmd.length ? cmd : ['/bin/sh', '-l'], {
    tty: wantsTty(a),
    env: parseKeyValues(a.env, 'environment variable'),
    cwd: a.cwd,
    user: a.user,
    group: a.group,
  });
}
