import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { target } from '../target.js';

/** "dev1/etc/hosts" → ["dev1", "/etc/hosts"], as LXD writes container paths. */
function splitTarget(s: string): [string, string] {
  const slash = s.indexOf('/');
  if (slash <= 0) throw new TslxcError(`Invalid container path "${s}"`, 'expected NAME/PATH, e.g. dev1/etc/hosts');
  return [s.slice(0, slash), s.slice(slash)];
}

export const filePush = defineCommand({
  command: 'push <source> <target>',
  describe: 'Copy a host file ("-": stdin) into a container (target NAME/PATH)',
  positionals: { source: { kind: 'path' }, target: { kind: 'container path' } },
  options: {
    mode: { type: 'string', kind: 'text', describe: "octal mode (default: the source's, 0644 for stdin)" },
    uid: { type: 'number' },
    gid: { type: 'number' },
    'create-dirs': { type: 'boolean', short: 'p', describe: 'create missing parent directories' },
  },
  run: async (argv) => {
    let [name, inner] = splitTarget(String(argv.target));
    // yargs hands a positional "-" over as "" (it re-reads positionals as "--source -"); no file
    // has an empty name, so "" is stdin too.
    const stdin = argv.source === '-' || argv.source === '';
    if (inner.endsWith('/')) {
      if (stdin) throw new TslxcError(`Invalid target "${argv.target}"`, 'stdin has no file name', `name the file, e.g. ${name}${inner}FILE`);
      inner += String(argv.source).split('/').pop();
    }
    const mode = argv.mode === undefined ? undefined : parseInt(String(argv.mode), 8);
    if (mode !== undefined && !(mode >= 0 && mode <= 0o7777)) throw new TslxcError(`Invalid mode "${argv.mode}"`, 'give an octal mode like 0644');
    const t = target(name);
    if (t.remote) {
      const { remotePush } = await import('../remote/file.js');
      return remotePush(t.remote, t.name, inner, stdin ? { stdin: process.stdin } : String(argv.source), {
        mode,
        uid: argv.uid as number | undefined,
        gid: argv.gid as number | undefined,
        createDirs: !!argv['create-dirs'],
      });
    }
    const { pushFile } = await import('../../instance/files.js');
    await pushFile(context(), t.name, stdin ? { stdin: process.stdin } : String(argv.source), inner, {
      mode,
      uid: argv.uid as number | undefined,
      gid: argv.gid as number | undefined,
      createDirs: !!argv['create-dirs'],
    });
  },
});

export const filePull = defineCommand({
  command: 'pull <source> <target>',
  describe: 'Copy a file out of a container (source NAME/PATH)',
  positionals: { source: { kind: 'container path' }, target: { kind: 'path' } },
  run: async (argv) => {
    const [name, inner] = splitTarget(String(argv.source));
    const t = target(name);
    if (t.remote) return (await import('../remote/file.js')).remotePull(t.remote, t.name, inner, String(argv.target));
    const { pullFile } = await import('../../instance/files.js');
    await pullFile(context(), t.name, inner, String(argv.target));
  },
});

export default defineGroup({
  command: 'file <command>',
  describe: 'Move files in and out of containers',
  subcommands: [filePush, filePull],
});
