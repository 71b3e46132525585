import { context } from '../common.js';
import { target } from '../target.js';
import { defineCommand } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';

export default defineCommand({
  command: 'list [filter]',
  aliases: ['ls'],
  describe: 'List containers',
  positionals: { filter: { kind: 'container', describe: 'only names starting with this' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    // "REMOTE:" (or a default remote) lists that server's containers; the filter follows the ':'.
    const t = target(argv.filter === undefined ? '' : String(argv.filter));
    const filter = t.name || undefined;
    if (t.remote) {
      const { remoteList } = await import('../remote/list.js');
      console.log(await remoteList(t.remote, argv.format as Format, filter));
      return;
    }
    const { renderList } = await import('../views/list.js');
    console.log(await renderList(context(), argv.format as Format, filter));
  },
});
