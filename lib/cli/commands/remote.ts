import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows } from '../ui/format.js';

const add = defineCommand({
  command: 'add <name> <url>',
  describe: 'Add a simplestreams image server',
  positionals: { name: { kind: 'new remote' }, url: { kind: 'url' } },
  run: async (argv) => {
    const { addRemote } = await import('../../image/remote.js');
    await addRemote(context().paths, String(argv.name), String(argv.url));
  },
});

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List image servers',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { listRemotes } = await import('../../image/remote.js');
    const rows = Object.entries(listRemotes(context().paths)).map(([name, r]) => ({ name, ...r }));
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'URL', value: (r) => r.url },
          { header: 'PROTOCOL', value: (r) => r.protocol },
        ],
        argv.format as Format,
      ),
    );
  },
});

const remove = defineCommand({
  command: 'remove <name>',
  aliases: ['rm'],
  describe: 'Remove an image server',
  positionals: { name: { kind: 'remote' } },
  run: async (argv) => {
    const { removeRemote } = await import('../../image/remote.js');
    await removeRemote(context().paths, String(argv.name));
  },
});

const rename = defineCommand({
  command: 'rename <from> <to>',
  describe: 'Rename an image server',
  positionals: { from: { kind: 'remote' }, to: { kind: 'new remote' } },
  run: async (argv) => {
    const { renameRemote } = await import('../../image/remote.js');
    await renameRemote(context().paths, String(argv.from), String(argv.to));
  },
});

export default defineGroup({
  command: 'remote <command>',
  describe: 'Manage remote image servers (simplestreams)',
  subcommands: [add, list, remove, rename],
});
