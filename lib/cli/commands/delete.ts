import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { targets } from '../target.js';

export default defineCommand({
  command: 'delete <names..>',
  aliases: ['rm'],
  describe: 'Delete containers and everything they hold',
  positionals: { names: { kind: 'container', describe: 'the containers' } },
  options: { force: { type: 'boolean', short: 'f', describe: 'stop running containers first (kill)' } },
  run: async (argv) => {
    const t = targets(argv.names as string[]);
    if (t.remote) return (await import('../remote/state.js')).remoteDelete(t.remote, t.names, !!argv.force);
    const { deleteInstance } = await import('../../instance/manage.js');
    for (const name of t.names) await deleteInstance(context(), String(name), { force: !!argv.force });
  },
});
