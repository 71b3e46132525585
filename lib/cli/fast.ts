import { parseArgs } from 'node:util';
import { EXEC_OPTIONS, wantsTty, type ExecArgs } from './options/exec.js';
import { STOP_OPTIONS } from './options/stop.js';
import { SSH_OPTIONS } from './options/ssh.js';
import { CREATE_OPTIONS } from './options/create.js';
import { errorText } from '../errors.js';
import { rerunIfNeedsTls } from './rerun.js';
import { leanArgs, parseArgsOptions, type LeanCommand } from './lean.js';

/**
 * Hot commands without yargs. `tslxc exec` is what scripts run in loops, and loading yargs (and the YAML parser) costs more
 * than the exec itself. This path parses exec's options from the same table with node's own
 * parseArgs and enters the container with the fewest modules loaded; so do list, start, stop, ssh,
 * create and launch, and the lean commands (lib/cli/lean.ts: copy, move, rename, delete, snapshot
 * create|restore|delete|rename), whose one definition both parsers read. Anything it does not
 * fully understand (help, a typo, another command) returns false and goes to the full CLI, which
 * gives the proper message.
 */
export async function tryFastPath(args: string[]): Promise<boolean> {
  if (args.includes('--help') || args.includes('-h') || args.includes('--debug')) return false;
  if (args[0] === 'list' || args[0] === 'ls') return fastList(args.slice(1));
  if (args[0] === 'start' || args[0] === 'stop') return fastStartStop(args[0], args.slice(1));
  if (args[0] === 'ssh') return fastSsh(args.slice(1));
  if (args[0] === 'launch' || args[0] === 'create' || args[0] === 'init') return fastCreate(args[0] === 'launch', args.slice(1));
  // Own keys only: `tslxc constructor` is not a lean command.
  const words = Object.hasOwn(LEAN_COMMANDS, `${args[0]} ${args[1]}`) ? 2 : Object.hasOwn(LEAN_COMMANDS, args[0] ?? '') ? 1 : 0;
  if (words) return fastLean(await LEAN_COMMANDS[args.slice(0, words).join(' ')](), args.slice(words));
  if (args[0] !== 'exec') return false;
  let parsed;
  try {
    parsed = parseArgs({ args: args.slice(1), options: parseArgsOptions(EXEC_OPTIONS), allowPositionals: true, strict: true });
  } catch {
    return false;
  }
  const [name, ...command] = parsed.positionals;
  if (!name) return false;
  const v = parsed.values as Record<string, unknown>;
  const a: ExecArgs = {
    tty: (v.tty ?? v['force-interactive']) as boolean | undefined,
    'no-tty': (v['no-tty'] ?? v['force-noninteractive']) as boolean | undefined,
    env: v.env as string[] | undefined,
    cwd: v.cwd as string | undefined,
    user: v.user as string | undefined,
  };
  const env: Record<string, string> = {};
  for (const kv of a.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) return false;
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const [{ execInstance }, { Context }] = await Promise.all([import('../instance/exec.js'), import('../instance/context.js')]);
  try {
    process.exitCode = await execInstance(new Context(), name, command.length ? command : ['/bin/sh', '-l'], { tty: wantsTty(a), env, cwd: a.cwd, user: a.user });
  } catch (err) {
    reportError(err);
  }
  return true;
}

/**
 * `tslxc list` is the other command people and scripts run all the time: `list [FILTER]
 * [--format|-f table|json|yaml|csv]` is parsed here and rendered by the same view as the yargs
 * command; anything else goes to the full CLI.
 */
async function fastList(args: string[]): Promise<boolean> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { format: { type: 'string', short: 'f' } }, allowPositionals: true, strict: true });
  } catch {
    return false;
  }
  const format = parsed.values.format ?? 'table';
  if (!['table', 'json', 'yaml', 'csv'].includes(format) || parsed.positionals.length > 1) return false;
  const [{ renderList }, { Context }] = await Promise.all([import('./views/list.js'), import('../instance/context.js')]);
  try {
    process.stdout.write(`${await renderList(new Context(), format as 'table', parsed.positionals[0])}\n`);
  } catch (err) {
    reportError(err);
  }
  return true;
}

/** `start NAME...` and `stop NAME... [--force] [--timeout S]`: what a user waits for, without yargs. */
async function fastStartStop(verb: 'start' | 'stop', args: string[]): Promise<boolean> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: verb === 'stop' ? { force: { type: 'boolean' }, timeout: { type: 'string' } } : {},
      allowPositionals: true,
      strict: true,
    });
  } catch {
    return false;
  }
  const v = parsed.values as { force?: boolean; timeout?: string };
  const timeout = v.timeout === undefined ? STOP_OPTIONS.timeout.default : Number(v.timeout);
  if (parsed.positionals.length === 0) return false;
  const { Context } = await import('../instance/context.js');
  const ctx = new Context();
  try {
    for (const name of parsed.positionals) {
      if (verb === 'start') await (await import('../instance/start.js')).startInstance(ctx, name);
      else await (await import('../instance/stop.js')).stopInstance(ctx, name, { force: !!v.force, timeout });
    }
  } catch (err) {
    reportError(err);
  }
  return true;
}

/** `ssh NAME [options] [-- CMD...]`: the same option table as the yargs command. */
async function fastSsh(args: string[]): Promise<boolean> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(SSH_OPTIONS), allowPositionals: true, strict: true });
  } catch {
    return false;
  }
  const [name, ...command] = parsed.positionals;
  if (!name) return false;
  const [{ sshInstance }, { sshOptionsFrom }, { Context }] = await Promise.all([import('../ssh/client.js'), import('./options/ssh.js'), import('../instance/context.js')]);
  try {
    process.exitCode = await sshInstance(new Context(), name, await sshOptionsFrom(parsed.values as Record<string, unknown>, command));
  } catch (err) {
    reportError(err);
  }
  return true;
}

/**
 * `create|launch IMAGE NAME [options]` without yargs and its help, for a plain launch.
 * Exactly the two positionals and the options of the shared table, or the full CLI decides.
 */
async function fastCreate(launch: boolean, args: string[]): Promise<boolean> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(CREATE_OPTIONS), allowPositionals: true, strict: true });
  } catch {
    return false;
  }
  if (parsed.positionals.length !== 2) return false;
  const argv = { ...parsed.values, image: parsed.positionals[0], name: parsed.positionals[1] };
  try {
    if (launch) await (await import('./commands/launch.js')).launchFromArgs(argv);
    else {
      const cfg = await (await import('./commands/create.js')).createFromArgs(argv);
      console.log(`Created ${cfg.name}`);
    }
  } catch (err) {
    reportError(err);
  }
  return true;
}

/**
 * What the full CLI prints for a failure: one line, and the error's exit code. A command that has
 * to connect without the certificates runs again with them instead (lib/util/tls.ts).
 */
function reportError(failure: unknown): void {
  const err = rerunIfNeedsTls(failure);
  if (err === undefined) return;
  process.stderr.write(`Error: ${errorText(err)}\n`);
  process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
}

/** The lean commands (lib/cli/lean.ts) by the words that name them, aliases included. */
export const LEAN_COMMANDS: Record<string, () => Promise<LeanCommand>> = {
  copy: async () => (await import('./commands/copy.js')).copyCommand,
  cp: async () => (await import('./commands/copy.js')).copyCommand,
  move: async () => (await import('./commands/move.js')).moveCommand,
  mv: async () => (await import('./commands/move.js')).moveCommand,
  rename: async () => (await import('./commands/rename.js')).renameCommand,
  delete: async () => (await import('./commands/delete.js')).deleteCommand,
  rm: async () => (await import('./commands/delete.js')).deleteCommand,
  'snapshot create': async () => (await import('./commands/snapshot.js')).snapshotCreate,
  'snapshot restore': async () => (await import('./commands/snapshot.js')).snapshotRestore,
  'snapshot delete': async () => (await import('./commands/snapshot.js')).snapshotDelete,
  'snapshot rm': async () => (await import('./commands/snapshot.js')).snapshotDelete,
  'snapshot rename': async () => (await import('./commands/snapshot.js')).snapshotRename,
};

async function fastLean(command: LeanCommand, args: string[]): Promise<boolean> {
  const argv = leanArgs(command, args);
  if (!argv) return false;
  try {
    await command.run(argv);
  } catch (err) {
    reportError(err);
  }
  return true;
}
