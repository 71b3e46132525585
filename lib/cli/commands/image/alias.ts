import { context } from '../../common.js';
import { defineCommand, defineGroup } from '../../define.js';
import { FORMAT_OPTION, type Format } from '../../options/format.js';
import { renderRows } from '../../ui/format.js';

const create = defineCommand({
  command: 'create <alias> <image>',
  describe: 'Name an image',
  positionals: { alias: { kind: 'new image' }, image: { kind: 'image' } },
  run: async (argv) => {
    const { createAlias } = await import('../../../image/manage.js');
    await createAlias(context().paths, String(argv.alias), String(argv.image));
  },
});

const del = defineCommand({
  command: 'delete <alias>',
  aliases: ['rm'],
  describe: 'Remove an alias (the image stays)',
  positionals: { alias: { kind: 'image' } },
  run: async (argv) => {
    const { deleteAlias } = await import('../../../image/manage.js');
    await deleteAlias(context().paths, String(argv.alias));
  },
});

const rename = defineCommand({
  command: 'rename <from> <to>',
  aliases: ['mv'],
  describe: 'Rename an alias',
  positionals: { from: { kind: 'image' }, to: { kind: 'new image' } },
  run: async (argv) => {
    const { renameAlias } = await import('../../../image/manage.js');
    await renameAlias(context().paths, String(argv.from), String(argv.to));
  },
});

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List aliases',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
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
});

export default defineGroup({
  command: 'alias <command>',
  describe: 'Manage image aliases',
  subcommands: [create, del, rename, list],
});
