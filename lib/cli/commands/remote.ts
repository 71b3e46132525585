import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, type Format } from '../ui/format.js';

const add: CommandModule = {
  command: 'add <name> <url>',
  describe: 'Add a simplestreams image server',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('url', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { addRemote } = await import('../../image/remote.js');
    await addRemote(context().paths, String(argv.name), String(argv.url));
  },
};

const list: CommandModule = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List image servers',
  builder: (y) => withFormat(y),
  handler: async (argv) => {
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
};

const remove: CommandModule = {
  command: 'remove <name>',
  aliases: ['rm'],
  describe: 'Remove an image server',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { removeRemote } = await import('../../image/remote.js');
    await removeRemote(context().paths, String(argv.name));
  },
};

const rename: CommandModule = {
  command: 'rename <from> <to>',
  describe: 'Rename an image server',
  builder: (y) => y.positional('from', { type: 'string', demandOption: true }).positional('to', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { renameRemote } = await import('../../image/remote.js');
    await renameRemote(context().paths, String(argv.from), String(argv.to));
  },
};

const command: CommandModule = {
  command: 'remote <command>',
  describe: 'Manage remote image servers (simplestreams)',
  builder: (y) => y.command(add).command(list).command(remove).command(rename).demandCommand(1),
  handler: () => {},
};
export default command;
