import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { target } from '../target.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';

export const snapshotCreate = defineCommand({
  command: 'create <name> [snapshot]',
  describe: 'Snapshot a container (default name snapN); a running one is frozen for the copy',
  positionals: { name: { kind: 'container', describe: 'the container' }, snapshot: { kind: 'new snapshot', describe: "the snapshot's name" } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteSnapshotCreate } = await import('../remote/snapshot.js');
      const snap = await remoteSnapshotCreate(t.remote, t.name, argv.snapshot as string | undefined);
      console.log(`Snapshot ${t.name}/${snap} created`);
      return;
    }
    const { createSnapshot } = await import('../../instance/snapshot.js');
    const timing = { frozenMs: 0 };
    const s = await createSnapshot(context(), t.name, argv.snapshot as string | undefined, timing);
    console.log(`Snapshot ${String(argv.name)}/${s} created${timing.frozenMs ? ` (frozen for ${timing.frozenMs} ms)` : ''}`);
  },
});
export const snapshotList = defineCommand({
  command: 'list <name>',
  aliases: ['ls'],
  describe: "List a container's snapshots",
  positionals: { name: { kind: 'container' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteSnapshotList } = await import('../remote/snapshot.js');
      console.log(await remoteSnapshotList(t.remote, t.name, argv.format as Format));
      return;
    }
    const { listSnapshots } = await import('../../instance/snapshot.js');
    const { renderRows } = await import('../ui/format.js');
    const rows = listSnapshots(context(), t.name);
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (s) => s.name },
          { header: 'CREATED', value: (s) => s.created_at },
        ],
        argv.format as Format,
      ),
    );
  },
});
export const snapshotRestore = defineCommand({
  command: 'restore <name> <snapshot>',
  describe: "Restore a stopped container's root and config from a snapshot",
  positionals: { name: { kind: 'stopped container', describe: 'the container' }, snapshot: { kind: 'snapshot', describe: 'the snapshot' } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) return (await import('../remote/snapshot.js')).remoteSnapshotRestore(t.remote, t.name, String(argv.snapshot));
    const { restoreSnapshot } = await import('../../instance/snapshot.js');
    await restoreSnapshot(context(), t.name, String(argv.snapshot));
  },
});
export const snapshotDelete = defineCommand({
  command: 'delete <name> <snapshot>',
  aliases: ['rm'],
  describe: 'Delete a snapshot',
  positionals: { name: { kind: 'container', describe: 'the container' }, snapshot: { kind: 'snapshot', describe: 'the snapshot' } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) return (await import('../remote/snapshot.js')).remoteSnapshotDelete(t.remote, t.name, String(argv.snapshot));
    const { deleteSnapshot } = await import('../../instance/snapshot.js');
    await deleteSnapshot(context(), t.name, String(argv.snapshot));
  },
});
export const snapshotRename = defineCommand({
  command: 'rename <name> <snapshot> <newname>',
  describe: 'Rename a snapshot',
  positionals: {
    name: { kind: 'container', describe: 'the container' },
    snapshot: { kind: 'snapshot', describe: 'the snapshot' },
    newname: { kind: 'new snapshot', describe: 'its new name' },
  },
  run: async (argv) => {
    const { renameSnapshot } = await import('../../instance/snapshot.js');
    await renameSnapshot(context(), String(argv.name), String(argv.snapshot), String(argv.newname));
  },
});
export default defineGroup({
  command: 'snapshot <command>',
  describe: 'Snapshots of containers',
  subcommands: [snapshotCreate, snapshotList, snapshotRestore, snapshotDelete, snapshotRename],
});
