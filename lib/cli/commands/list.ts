import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import type { Format } from '../ui/format.js';

const command: CommandModule = {
  command: 'list [filter]',
  aliases: ['ls'],
  describe: 'List containers',
  builder: (y) => withFormat(y.positional('filter', { type: 'string', describe: 'only names starting with this' })),
  handler: async (argv) => {
    const { renderList } = await import('../views/list.js');
    console.log(await renderList(context(), argv.format as Format, argv.filter as string | undefined));
  },
};
export default command;
