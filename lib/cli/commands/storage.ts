import { context, parseKeyValues } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { humanBytes, renderRows, renderValue } from '../ui/format.js';

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List storage pools',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { listPoolConfigs, poolUsers } = await import('../../storage/manage.js');
    const ctx = context();
    const pools = listPoolConfigs(ctx).map((p) => ({ ...p, used_by: poolUsers(ctx, p.name) }));
    console.log(
      renderRows(
        pools,
        [
          { header: 'NAME', value: (p) => p.name },
          { header: 'DRIVER', value: (p) => p.driver },
          { header: 'DESCRIPTION', value: (p) => p.description ?? '' },
          { header: 'USED BY', value: (p) => String(p.used_by.length) },
        ],
        argv.format as Format,
      ),
    );
  },
});

const create = defineCommand({
  command: 'create <name> <driver> [config..]',
  describe: 'Create a storage pool (drivers: dir, overlay, btrfs; btrfs takes source=PATH or size=SIZE, dir spare_roots=true|false)',
  positionals: {
    name: { kind: 'new pool' },
    driver: { kind: 'storage driver', choices: ['dir', 'overlay', 'btrfs'] },
    config: { kind: 'key=value', describe: 'KEY=VALUE' },
  },
  options: { description: { type: 'string' } },
  run: async (argv) => {
    const { createPool } = await import('../../storage/manage.js');
    const pool = await createPool(
      context(),
      String(argv.name),
      String(argv.driver),
      parseKeyValues(argv.config, 'pool setting'),
      argv.description as string | undefined,
    );
    console.log(`Storage pool ${pool.name} created`);
  },
});

const show = defineCommand({
  command: 'show <name>',
  describe: "Show a storage pool's configuration",
  positionals: { name: { kind: 'pool' } },
  run: async (argv) => {
    const { loadPool } = await import('../../storage/pool.js');
    console.log(renderValue(loadPool(context().paths, String(argv.name)), 'yaml'));
  },
});

const info = defineCommand({
  command: 'info <name>',
  describe: 'Driver, source, space and users of a storage pool',
  positionals: { name: { kind: 'pool' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { poolInfo } = await import('../../storage/manage.js');
    const i = await poolInfo(context(), String(argv.name));
    if (argv.format === 'json' || argv.format === 'yaml') {
      console.log(renderValue(i, argv.format));
      return;
    }
    const lines = [
      `name: ${i.name}`,
      `driver: ${i.driver}`,
      `source: ${i.source}`,
      `description: ${i.description ?? ''}`,
      `size: ${humanBytes(i.usage.size)}`,
      `used: ${humanBytes(i.usage.used)}`,
      `free: ${humanBytes(i.usage.free)}`,
      `used by: ${i.used_by.length ? i.used_by.join(', ') : '(nothing)'}`,
      `volumes: ${i.volumes.length ? i.volumes.join(', ') : '(none)'}`,
    ];
    // dir pools: the images whose next container takes a copy made ahead (spare_roots).
    if (i.spares)
      lines.push(
        `spare roots: ${i.config.spare_roots === 'false' ? '(off)' : i.spares.length ? i.spares.map((f) => f.slice(0, 12)).join(', ') : '(none yet)'}`,
      );
    console.log(lines.join('\n'));
  },
});

const set = defineCommand({
  command: 'set <name> <config..>',
  describe: 'Change a pool: description=..., size=... (grows a btrfs loop file), spare_roots=true|false (dir)',
  positionals: { name: { kind: 'pool' }, config: { kind: 'key=value' } },
  run: async (argv) => {
    const { setPool } = await import('../../storage/manage.js');
    await setPool(context(), String(argv.name), parseKeyValues(argv.config, 'pool setting'));
  },
});

const del = defineCommand({
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete an unused storage pool',
  positionals: { name: { kind: 'pool' } },
  run: async (argv) => {
    const { deletePool } = await import('../../storage/manage.js');
    await deletePool(context(), String(argv.name));
    console.log(`Storage pool ${String(argv.name)} deleted`);
  },
});

// ---------------------------------------------------------------------------------------------
// Custom volumes: tslxc storage volume VERB POOL VOLUME ...

const V = () => import('../../storage/volume.js');
const attachments = () => import('../../instance/volumes.js');

const volumeCommands = [
  defineCommand({
    command: 'create <pool> <volume>',
    describe: 'Create a custom volume (a directory on dir/overlay pools, a subvolume on btrfs)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'new volume' } },
    options: { description: { type: 'string' } },
    run: async (argv) => {
      await (await V()).createVolume(context(), String(argv.pool), String(argv.volume), argv.description as string | undefined);
      console.log(`Storage volume ${String(argv.pool)}/${String(argv.volume)} created`);
    },
  }),
  defineCommand({
    command: 'list <pool>',
    aliases: ['ls'],
    describe: "List a pool's custom volumes",
    positionals: { pool: { kind: 'pool' } },
    options: { format: FORMAT_OPTION },
    run: async (argv) => {
      const v = await V();
      const ctx = context();
      await (await import('../../storage/driver.js')).usePool(ctx, String(argv.pool));
      const rows = v.listVolumes(ctx.paths, String(argv.pool)).map((x) => ({ ...x, used_by: v.volumeUsers(ctx.paths, String(argv.pool), x.name) }));
      console.log(
        renderRows(
          rows,
          [
            { header: 'NAME', value: (x) => x.name },
            { header: 'DESCRIPTION', value: (x) => x.description ?? '' },
            { header: 'USED BY', value: (x) => x.used_by.join(', ') },
          ],
          argv.format as Format,
        ),
      );
    },
  }),
  defineCommand({
    command: 'show <pool> <volume>',
    describe: 'Show a custom volume (snapshots, users, host path)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' } },
    run: async (argv) => {
      const ctx = context();
      await (await import('../../storage/driver.js')).usePool(ctx, String(argv.pool));
      console.log(renderValue((await V()).showVolume(ctx.paths, String(argv.pool), String(argv.volume)), 'yaml'));
    },
  }),
  defineCommand({
    command: 'delete <pool> <volume> [snapshot]',
    aliases: ['rm'],
    describe: 'Delete a custom volume not in use (or one of its snapshots)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, snapshot: { kind: 'snapshot' } },
    run: async (argv) => {
      const v = await V();
      if (argv.snapshot) await v.deleteVolumeSnapshot(context(), String(argv.pool), String(argv.volume), String(argv.snapshot));
      else await v.deleteVolume(context(), String(argv.pool), String(argv.volume));
    },
  }),
  defineCommand({
    command: 'rename <pool> <volume> <newname>',
    describe: 'Rename a custom volume not in use',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, newname: { kind: 'new volume' } },
    run: async (argv) => {
      await (await V()).renameVolume(context(), String(argv.pool), String(argv.volume), String(argv.newname));
    },
  }),
  defineCommand({
    command: 'copy <pool> <volume> <target>',
    describe: 'Copy a custom volume (target: NAME, or POOL/NAME for another pool)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, target: { kind: 'new volume' } },
    run: async (argv) => {
      const t = String(argv.target);
      const [pool, name] = t.includes('/') ? t.split('/', 2) : [String(argv.pool), t];
      await (await V()).copyVolume(context(), String(argv.pool), String(argv.volume), name, pool);
    },
  }),
  defineCommand({
    command: 'attach <pool> <volume> <container> <path> [device]',
    describe: "Give a volume to a container as a disk device at PATH (device name: the volume's)",
    positionals: {
      pool: { kind: 'pool' },
      volume: { kind: 'volume' },
      container: { kind: 'container' },
      path: { kind: 'container path' },
      device: { kind: 'new device' },
    },
    run: async (argv) => {
      await (
        await attachments()
      ).attachVolume(context(), String(argv.pool), String(argv.volume), String(argv.container), String(argv.path), argv.device as string | undefined);
    },
  }),
  defineCommand({
    command: 'detach <pool> <volume> <container>',
    describe: "Remove a volume's disk devices from a container",
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, container: { kind: 'container' } },
    run: async (argv) => {
      await (await attachments()).detachVolume(context(), String(argv.pool), String(argv.volume), String(argv.container));
    },
  }),
  defineCommand({
    command: 'snapshot <pool> <volume> [snapshot]',
    describe: 'Snapshot a custom volume (default name snapN)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, snapshot: { kind: 'new snapshot' } },
    run: async (argv) => {
      const s = await (await V()).snapshotVolume(context(), String(argv.pool), String(argv.volume), argv.snapshot as string | undefined);
      console.log(`Snapshot ${String(argv.pool)}/${String(argv.volume)}/${s} created`);
    },
  }),
  defineCommand({
    command: 'restore <pool> <volume> <snapshot>',
    describe: 'Put a volume back as it was at a snapshot (no running user)',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, snapshot: { kind: 'snapshot' } },
    run: async (argv) => {
      await (await V()).restoreVolume(context(), String(argv.pool), String(argv.volume), String(argv.snapshot));
    },
  }),
  defineCommand({
    command: 'export <pool> <volume> <file>',
    describe: "Write a volume's data to a gzipped tarball",
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'volume' }, file: { kind: 'path' } },
    run: async (argv) => {
      await (await V()).exportVolume(context(), String(argv.pool), String(argv.volume), String(argv.file));
    },
  }),
  defineCommand({
    command: 'import <pool> <volume> <file>',
    describe: 'Make a volume from a tarball written by export',
    positionals: { pool: { kind: 'pool' }, volume: { kind: 'new volume' }, file: { kind: 'path' } },
    run: async (argv) => {
      await (await V()).importVolume(context(), String(argv.pool), String(argv.volume), String(argv.file));
    },
  }),
];

const volume = defineGroup({
  command: 'volume <command>',
  describe: 'Manage custom storage volumes',
  subcommands: volumeCommands,
});

export default defineGroup({
  command: 'storage <command>',
  describe: 'Manage storage pools and volumes',
  subcommands: [list, create, show, info, set, del, volume],
});
