import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { target } from '../target.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import type { Context } from '../../state/context.js';

/**
 * Expired snapshots go before each snapshot command's work on the container (tslxc has no daemon
 * to prune them on a timer unless `tslxc serve` runs), so a list never shows one past its time.
 */
async function pruned(name: string): Promise<Context> {
  const ctx = context();
  const { pruneExpiredSnapshots } = await import('../../instance/snapshot.js');
  for (const s of await pruneExpiredSnapshots(ctx, name)) console.error(`Snapshot ${name}/${s} expired: deleted`);
  return ctx;
}

export const snapshotCreate = defineCommand({
  command: 'create <name> [snapshot]',
  describe: 'Snapshot a container (default name snapN); a running one is frozen for the copy',
  positionals: { name: { kind: 'container', describe: 'the container' }, snapshot: { kind: 'new snapshot', describe: "the snapshot's name" } },
  options: {
    expiry: {
      type: 'string',
      kind: 'text',
      conflicts: ['no-expiry'],
      describe: 'delete it after this long (30M, 12H, 3d, 2w, 6m, 1y; default: snapshots.expiry)',
    },
    'no-expiry': { type: 'boolean', describe: 'keep it until deleted, whatever snapshots.expiry says' },
  },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteSnapshotCreate } = await import('../remote/snapshot.js');
      const snap = await remoteSnapshotCreate(t.remote, t.name, argv.snapshot as string | undefined);
      console.log(`Snapshot ${t.name}/${snap} created`);
      return;
    }
    const { createSnapshot } = await import('../../instance/snapshot.js');
    const { expiryAfter } = await import('../../config/expiry.js');
    const expiresAt = argv['no-expiry'] ? null : argv.expiry !== undefined ? (expiryAfter(new Date(), String(argv.expiry), '--expiry') ?? null) : undefined;
    const timing = { frozenMs: 0 };
    const s = await createSnapshot(await pruned(t.name), t.name, argv.snapshot as string | undefined, timing, { expiresAt });
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
    const rows = listSnapshots(await pruned(t.name), t.name);
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (s) => s.name },
          { header: 'CREATED', value: (s) => s.created_at },
          { header: 'EXPIRES', value: (s) => s.expires_at ?? '' },
        ],
        argv.format as Format,
      ),
    );
  },
});
export const snapshotRestore = defineCommand({
  command: 'restore <name> <snapshot>',
  describe: "Restore a container's root and config from a snapshot (a running one is stopped for it and started again)",
  positionals: { name: { kind: 'container', describe: 'the container' }, snapshot: { kind: 'snapshot', describe: 'the snapshot' } },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) return (await import('../remote/snapshot.js')).remoteSnapshotRestore(t.remote, t.name, String(argv.snapshot));
    const { restoreSnapshot } = await import('../../instance/snapshot.js');
    await restoreSnapshot(await pruned(t.name), t.name, String(argv.snapshot));
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
    await deleteSnapshot(await pruned(t.name), t.name, String(argv.snapshot));
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
    await renameSnapshot(await pruned(String(argv.name)), String(argv.name), String(argv.snapshot), String(argv.newname));
  },
});
export default defineGroup({
  command: 'snapshot <command>',
  describe: 'Snapshots of containers',
  subcommands: [snapshotCreate, snapshotList, snapshotRestore, snapshotDelete, snapshotRename],
});
