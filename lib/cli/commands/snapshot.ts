import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, type Format } from '../ui/format.js';

const create: CommandModule = {
  command: 'create <name> [snapshot]',
  describe: 'Snapshot a stopped container (default name snapN)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string' }),
  handler: async (argv) => {
    const { createSnapshot } = await import('../../storage/snapshot.js');
    const s = await createSnapshot(context(), String(argv.name), argv.snapshot as string | undefined);
    console.log(`Snapshot ${String(argv.name)}/${s} created`);
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
  describe: 'Restore a stopped container\'s root from a snapshot',
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
const command: CommandModule = {
  command: 'snapshot <command>',
  describe: 'Snapshots of stopped containers',
  builder: (y) => y.command(create).command(list).command(restore).command(del).demandCommand(1),
  handler: () => {},
};
export default command;
