import yargs, { type Argv } from 'yargs';
import { TslxcError, errorText } from '../errors.js';
import { rerunIfNeedsTls } from './rerun.js';
import { exitGraceMs } from './common.js';
import { yargsCommand } from './adapter.js';
import { isGroup, verbOf, type CommandDef, type GroupDef } from './define.js';
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
import completion from './commands/completion.js';
import ephemeralEnded from './commands/ephemeral-ended.js';

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
  completion,
  ephemeralEnded,
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
      process.stderr.write(`Error: ${usageLine(err.message, args)}\n`);
      process.exitCode = 2;
      return;
    }
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.stderr.write(`Error: ${errorText(err)}\n`);
    process.exitCode = err instanceof TslxcError ? err.exitCode : 1;
  }
}

/**
 * The words of ARGS that name a verb and its subcommands (`network`, `storage volume create`), and
 * the word after them that names none when the command stops at a group or before any verb.
 */
export function commandWords(args: string[]): { words: string[]; unknown?: string } {
  let defs: Array<CommandDef | GroupDef> = VERBS;
  const words: string[] = [];
  for (const arg of args) {
    if (arg === '--') break;
    if (arg.startsWith('-')) continue;
    const def = defs.find((d) => verbOf(d) === arg || d.aliases?.includes(arg));
    if (!def) return { words, unknown: arg };
    words.push(arg);
    if (!isGroup(def)) break;
    defs = def.subcommands;
  }
  return { words };
}

/** A usage error in one line: what was wrong, and the help of the command that was meant. */
export function usageLine(message: string, args: string[]): string {
  const { words, unknown } = commandWords(args);
  const help = `see "tslxc ${words.map((w) => `${w} `).join('')}--help"`;
  const suggested = /^Did you mean (\S+)\?$/.exec(message)?.[1];
  if (unknown !== undefined && suggested !== undefined)
    return `unknown command "${[...words, unknown].join(' ')}": did you mean "${[...words, suggested].join(' ')}"? (${help})`;
  if (unknown !== undefined && /^Unknown (argument|command)/.test(message)) return `unknown command "${[...words, unknown].join(' ')}" (${help})`;
  const extra = /^Unknown command: (.+)$/.exec(message)?.[1];
  if (extra !== undefined) return `unexpected argument "${extra}" (${help})`;
  const names = /^Unknown arguments?: (.+)$/.exec(message)?.[1]?.split(', ');
  if (names) {
    const given = names.map((n) => args.find((a) => a === `--${n}` || a.startsWith(`--${n}=`) || a === `-${n}`)?.split('=')[0] ?? n);
    return `unknown option${given.length > 1 ? 's' : ''} ${given.map((g) => `"${g}"`).join(', ')} (${help})`;
  }
  return `${message} (${help})`;
}
