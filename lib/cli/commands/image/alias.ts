import type { CommandModule } from 'yargs';
import { context, withFormat } from '../../common.js';
import { renderRows, type Format } from '../../ui/format.js';

const create: CommandModule = {
  command: 'create <alias> <image>',
  describe: 'Name an image',
  builder: (y) => y.positional('alias', { type: 'string', demandOption: true }).positional('image', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { createAlias } = await import('../../../image/manage.js');
    await createAlias(context().paths, String(argv.alias), String(argv.image));
  },
};

const del: CommandModule = {
  command: 'delete <alias>',
  aliases: ['rm'],
  describe: 'Remove an alias (the image stays)',
  builder: (y) => y.positional('alias', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { deleteAlias } = await import('../../../image/manage.js');
    await deleteAlias(context().paths, String(argv.alias));
  },
};

const rename: CommandModule = {
  command: 'rename <from> <to>',
  aliases: ['mv'],
  describe: 'Rename an alias',
  builder: (y) => y.positional('from', { type: 'string', demandOption: true }).positional('to', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { renameAlias } = await import('../../../image/manage.js');
    await renameAlias(context().paths, String(argv.from), String(argv.to));
  },
};

const list: CommandModule = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List aliases',
  builder: (y) => withFormat(y),
  handler: async (argv) => {
    const { listAliases } = await import('../../../image/manage.js');
    const rows = listAliases(context().paths);
    console.log(
      renderRows(
        rows,
        [
          { header: 'ALIAS', value: (r) => r.alias },
          { header: 'FINGERPRINT', value: (r) => r.fingerprint.slice(0, 12) },
          { header: 'DESCRIPTION', value: (r) => r.description },
        ],
        argv.format as Format,
      ),
    );
  },
};

const alias: CommandModule = {
  command: 'alias <command>',
  describe: 'Manage image aliases',
  builder: (y) => y.command(create).command(del).command(rename).command(list).demandCommand(1),
  handler: () => {},
};
export default alias;
