import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, type Format } from '../ui/format.js';
import type { InstanceState } from '../../instance/status.js';

const command: CommandModule = {
  command: 'list [filter]',
  aliases: ['ls'],
  describe: 'List containers',
  builder: (y) => withFormat(y.positional('filter', { type: 'string', describe: 'only names starting with this' })),
  handler: async (argv) => {
    const { listStates } = await import('../../instance/status.js');
    let rows = await listStates(context());
    if (argv.filter) rows = rows.filter((r) => r.name.startsWith(String(argv.filter)));
    console.log(
      renderRows<InstanceState>(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'STATE', value: (r) => r.status.toUpperCase() },
          { header: 'IPV4', value: (r) => r.ipv4.join(', ') },
          { header: 'IMAGE', value: (r) => r.image },
          { header: 'PID', value: (r) => r.initPid },
        ],
        argv.format as Format,
        (r) => r,
      ),
    );
  },
};
export default command;
