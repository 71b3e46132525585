import type { CommandDef } from './define.js';
import { runFast } from './fast-run.js';

/**
 * Verbs without yargs. `tslxc exec` is what scripts run in loops, and loading yargs (and the YAML
 * parser) costs more than the exec itself; so do list, start, stop and launch, for people. This
 * path finds the verb's definition in a table (FAST_COMMANDS) and parses its arguments with the
 * one generic parser (lib/cli/define.ts), then runs the definition's handler, the same one yargs
 * runs. Anything that parser does not take exactly (help, a typo, an unknown option, another
 * command) returns false and goes to the full CLI, which gives the proper message.
 */
export async function tryFastPath(args: string[]): Promise<boolean> {
  // What a shell's completion function runs at each Tab (lib/cli/complete.ts).
  if (args[0] === '__complete') {
    (await import('./complete.js')).completeMain(args.slice(1));
    return true;
  }
  // Own keys only: `tslxc constructor` is not a command.
  const two = `${args[0]} ${args[1]}`;
  const words = Object.hasOwn(FAST_COMMANDS, two) ? 2 : Object.hasOwn(FAST_COMMANDS, args[0] ?? '') ? 1 : 0;
  if (!words) return false;
  return runFast(await FAST_COMMANDS[args.slice(0, words).join(' ')]!(), args.slice(words));
}

const snapshot = () => import('./commands/snapshot.js');

/**
 * The verbs the fast path runs, by the words that name them, aliases included (a unit test checks
 * this table against the definitions). Loaders, not definitions: a verb loads only its own module.
 */
export const FAST_COMMANDS: Record<string, () => Promise<CommandDef>> = {
  exec: async () => (await import('./commands/exec.js')).default,
  list: async () => (await import('./commands/list.js')).default,
  ls: async () => (await import('./commands/list.js')).default,
  start: async () => (await import('./commands/start.js')).default,
  stop: async () => (await import('./commands/stop.js')).default,
  restart: async () => (await import('./commands/restart.js')).default,
  ssh: async () => (await import('./commands/ssh.js')).default,
  create: async () => (await import('./commands/create.js')).default,
  init: async () => (await import('./commands/create.js')).default,
  launch: async () => (await import('./commands/launch.js')).default,
  copy: async () => (await import('./commands/copy.js')).default,
  cp: async () => (await import('./commands/copy.js')).default,
  move: async () => (await import('./commands/move.js')).default,
  mv: async () => (await import('./commands/move.js')).default,
  rename: async () => (await import('./commands/rename.js')).default,
  delete: async () => (await import('./commands/delete.js')).default,
  rm: async () => (await import('./commands/delete.js')).default,
  pause: async () => (await import('./commands/pause.js')).default,
  freeze: async () => (await import('./commands/pause.js')).default,
  resume: async () => (await import('./commands/pause.js')).resume,
  unfreeze: async () => (await import('./commands/pause.js')).resume,
  wait: async () => (await import('./commands/wait.js')).default,
  shell: async () => (await import('./commands/shell.js')).default,
  console: async () => (await import('./commands/console.js')).default,
  info: async () => (await import('./commands/info.js')).default,
  autostart: async () => (await import('./commands/autostart.js')).default,
  top: async () => (await import('./commands/top.js')).default,
  publish: async () => (await import('./commands/publish.js')).default,
  // An import is a copy with its checks: the yargs CLI's start would be a good part of it.
  'image import': async () => (await import('./commands/image/import.js')).importCmd,
  'file push': async () => (await import('./commands/file.js')).filePush,
  'file pull': async () => (await import('./commands/file.js')).filePull,
  'snapshot create': async () => (await snapshot()).snapshotCreate,
  'snapshot list': async () => (await snapshot()).snapshotList,
  'snapshot ls': async () => (await snapshot()).snapshotList,
  'snapshot restore': async () => (await snapshot()).snapshotRestore,
  'snapshot delete': async () => (await snapshot()).snapshotDelete,
  'snapshot rm': async () => (await snapshot()).snapshotDelete,
  'snapshot rename': async () => (await snapshot()).snapshotRename,
  // A long-lived server: what it loads at start (yargs and its parsers) it keeps in memory for good.
  serve: async () => (await import('./commands/serve.js')).default,
};

/**
 * The verbs people and scripts wait on (start, stop, exec, list; create and launch) are also
 * bundled one file each (scripts/bundle.mjs, under the verb's word and its aliases): bin/tslxc.js
 * loads that file alone, where the fast path's shared chunks cost node a resolve, a read, a
 * compile and a link for each of some 40 files. Modules of lib/cli/commands/, each in the table
 * above.
 */
export const OWN_BUNDLES = ['start', 'stop', 'exec', 'list', 'create', 'launch'];
