import yargs, { type Argv } from 'yargs';
import { TslxcError, errorText } from '../errors.js';
import { rerunIfNeedsTls } from './rerun.js';
import { exitGraceMs } from './common.js';
import { yargsCommand } from './adapter.js';
import type { CommandDef, GroupDef } from './define.js';
import create from './commands/create.js';
import launch from './commands/launch.js';
import start from './commands/start.js';
import stop from './commands/stop.js';
import restart from './commands/restart.js';
import pause, { resume } from './commands/pause.js';
import del from './commands/delete.js';
import rename from './commands/rename.js';
import list from './commands/list.js';
import info from './commands/info.js';
import exec from './commands/exec.js';
import shell from './commands/shell.js';
import consoleCmd from './commands/console.js';
import file from './commands/file.js';
import wait from './commands/wait.js';
import image from './commands/image.js';
import publish from './commands/publish.js';
import remote from './commands/remote.js';
import registry from './commands/registry.js';
import network from './commands/network.js';
import storage from './commands/storage.js';
import snapshot from './commands/snapshot.js';
import copy from './commands/copy.js';
import move from './commands/move.js';
import config from './commands/config.js';
import profile from './commands/profile.js';
import top from './commands/top.js';
import host from './commands/host.js';
import admin from './commands/admin.js';
import autostart from './commands/autostart.js';
import lab from './commands/lab.js';
import gateway from './commands/gateway.js';
import serve from './commands/serve.js';
import ssh from './commands/ssh.js';
import sshKey from './commands/ssh-key.js';

/** Every verb's definition (lib/cli/define.ts), in the order help lists them. What shell completion walks. */
export const VERBS: Array<CommandDef | GroupDef> = [
  launch,
  create,
  start,
  stop,
  restart,
  pause,
  resume,
  del,
  rename,
  list,
  info,
  exec,
  shell,
  consoleCmd,
  file,
  wait,
  image,
  publish,
  remote,
  registry,
  network,
  storage,
  snapshot,
  copy,
  move,
  config,
  profile,
  top,
  host,
  admin,
  autostart,
  lab,
  gateway,
  serve,
  ssh,
  sshKey,
];

/** The CLI: one module per verb (lib/cli/commands), each a thin layer over the library. */
export function createCli(args: string[]): Argv {
  return VERBS.reduce((y, v) => y.command(yargsCommand(v)), yargs(args))
    .scriptName('tslxc')
    .usage('$0 <command> [options]\n\nSystem containers: full Linux systems that boot their own init.')
    .option('debug', { type: 'boolean', global: true, describe: "show stack traces and the helper's steps" })
    .demandCommand(1, 'Give a command; "tslxc --help" lists them.')
    .strictCommands()
    .strictOptions()
    .recommendCommands()
    .parserConfiguration({ 'populate--': true })
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      throw new UsageError(msg || 'invalid usage', y);
    });
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly y: Argv,
  ) {
    super(message);
  }
}

/** Entry point: runs a command, prints any failure as one line on stderr, sets the exit code. */
export async function main(args: string[]): Promise<void> {
  const debug = args.includes('--debug');
  try {
    await createCli(args).parseAsync();
    const grace = exitGraceMs();
    if (grace !== undefined) setTimeout(() => process.exit(), grace).unref();
  } catch (failure) {
    const err = rerunIfNeedsTls(failure);
    if (err === undefined) return;
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message} (see "tslxc ${args[0] && !args[0].startsWith('-') ? `${args[0]} ` : ''}--help")\n`);
      process.exitCode = 2;
      return;
    }
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.stderr.write(`Error: ${errorText(err)}\n`);
    process.exitCode = err instanceof TslxcError ? err.exitCode : 1;
  }
}
