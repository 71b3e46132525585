import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, type Format } from '../ui/format.js';

const create: CommandModule = {
  command: 'create <name> [snapshot]',
  describe: 'Snapshot a container (default name snapN); a running one is frozen for the copy',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string' }),
  handler: async (argv) => {
    const { createSnapshot } = await import('../../storage/snapshot.js');
    const timing = { frozenMs: 0 };
    const s = await createSnapshot(context(), String(argv.name), argv.snapshot as string | undefined, timing);
    console.log(`Snapshot ${String(argv.name)}/${s} created${timing.frozenMs ? ` (frozen for ${timing.frozenMs} ms)` : ''}`);
  },
};
const list: CommandModule = {
  command: 'list <name>',
  aliases: ['ls'],
  describe: 'List a container\'s snapshots',
  builder: (y) => withFormat(y.positional('name', { type: 'string', demandOption: true })),
  handler: async (argv) => {
    const { listSnapshots } = await import('../../storage/snapshot.js');
    const rows = listSnapshots(context(), String(argv.name));
    console.log(renderRows(rows, [{ header: 'NAME', value: (s) => s.name }, { header: 'CREATED', value: (s) => s.created_at }], argv.format as Format));
  },
};
const restore: CommandModule = {
  command: 'restore <name> <snapshot>',
  describe: 'Restore a stopped container\'s root and config from a snapshot',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { restoreSnapshot } = await import('../../storage/snapshot.js');
    await restoreSnapshot(context(), String(argv.name), String(argv.snapshot));
  },
};
const del: CommandModule = {
  command: 'delete <name> <snapshot>',
  aliases: ['rm'],
  describe: 'Delete a snapshot',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { deleteSnapshot } = await import('../../storage/snapshot.js');
    await deleteSnapshot(context(), String(argv.name), String(argv.snapshot));
  },
};
const rename: CommandModule = {
  command: 'rename <name> <snapshot> <newname>',
  describe: 'Rename a snapshot',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string', demandOption: true }).positional('newname', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { renameSnapshot } = await import('../../storage/snapshot.js');
    await renameSnapshot(context(), String(argv.name), String(argv.snapshot), String(argv.newname));
  },
};
const command: CommandModule = {
  command: 'snapshot <command>',
  describe: 'Snapshots of containers',
  builder: (y) => y.command(create).command(list).command(restore).command(del).command(rename).demandCommand(1),
  handler: () => {},
};
export default command;
