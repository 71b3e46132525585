import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, type Format } from '../ui/format.js';
import { yargsCommand, type LeanCommand } from '../lean.js';

export const snapshotCreate: LeanCommand = {
  command: 'create <name> [snapshot]',
  describe: 'Snapshot a container (default name snapN); a running one is frozen for the copy',
  positionals: { name: 'the container', snapshot: 'the snapshot\'s name' },
  run: async (argv) => {
    const { createSnapshot } = await import('../../instance/snapshot.js');
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
    const { listSnapshots } = await import('../../instance/snapshot.js');
    const rows = listSnapshots(context(), String(argv.name));
    console.log(renderRows(rows, [{ header: 'NAME', value: (s) => s.name }, { header: 'CREATED', value: (s) => s.created_at }], argv.format as Format));
  },
};
export const snapshotRestore: LeanCommand = {
  command: 'restore <name> <snapshot>',
  describe: 'Restore a stopped container\'s root and config from a snapshot',
  positionals: { name: 'the container', snapshot: 'the snapshot' },
  run: async (argv) => {
    const { restoreSnapshot } = await import('../../instance/snapshot.js');
    await restoreSnapshot(context(), String(argv.name), String(argv.snapshot));
  },
};
export const snapshotDelete: LeanCommand = {
  command: 'delete <name> <snapshot>',
  aliases: ['rm'],
  describe: 'Delete a snapshot',
  positionals: { name: 'the container', snapshot: 'the snapshot' },
  run: async (argv) => {
    const { deleteSnapshot } = await import('../../instance/snapshot.js');
    await deleteSnapshot(context(), String(argv.name), String(argv.snapshot));
  },
};
export const snapshotRename: LeanCommand = {
  command: 'rename <name> <snapshot> <newname>',
  describe: 'Rename a snapshot',
  positionals: { name: 'the container', snapshot: 'the snapshot', newname: 'its new name' },
  run: async (argv) => {
    const { renameSnapshot } = await import('../../instance/snapshot.js');
    await renameSnapshot(context(), String(argv.name), String(argv.snapshot), String(argv.newname));
  },
};
const command: CommandModule = {
  command: 'snapshot <command>',
  describe: 'Snapshots of containers',
  builder: (y) => y.command(yargsCommand(snapshotCreate)).command(list).command(yargsCommand(snapshotRestore)).command(yargsCommand(snapshotDelete)).command(yargsCommand(snapshotRename)).demandCommand(1),
  handler: () => {},
};
export default command;
