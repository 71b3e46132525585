import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';

export default defineCommand({
  command: 'list [filter]',
  aliases: ['ls'],
  describe: 'List containers',
  positionals: { filter: { kind: 'container', describe: 'only names starting with this' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { renderList } = await import('../views/list.js');
    console.log(await renderList(context(), argv.format as Format, argv.filter as string | undefined));
  },
});
