import type { CommandModule } from 'yargs';
import { context, parseKeyValues, withFormat } from '../common.js';
import { humanBytes, renderRows, renderValue, type Format } from '../ui/format.js';

const list: CommandModule = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List storage pools',
  builder: (y) => withFormat(y),
  handler: async (argv) => {
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
};

const create: CommandModule = {
  command: 'create <name> <driver> [config..]',
  describe: 'Create a storage pool (drivers: dir, overlay, btrfs; btrfs takes source=PATH or size=SIZE)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .positional('driver', { type: 'string', demandOption: true, choices: ['dir', 'overlay', 'btrfs'] })
      .positional('config', { type: 'string', array: true, describe: 'KEY=VALUE' })
      .option('description', { type: 'string' }),
  handler: async (argv) => {
    const { createPool } = await import('../../storage/manage.js');
    const pool = await createPool(context(), String(argv.name), String(argv.driver), parseKeyValues(argv.config, 'pool setting'), argv.description as string | undefined);
    console.log(`Storage pool ${pool.name} created`);
  },
};

const show: CommandModule = {
  command: 'show <name>',
  describe: 'Show a storage pool\'s configuration',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { loadPool } = await import('../../storage/pool.js');
    console.log(renderValue(loadPool(context().paths, String(argv.name)), 'yaml'));
  },
};

const info: CommandModule = {
  command: 'info <name>',
  describe: 'Driver, source, space and users of a storage pool',
  builder: (y) => withFormat(y.positional('name', { type: 'string', demandOption: true })),
  handler: async (argv) => {
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
    ];
    console.log(lines.join('\n'));
  },
};

const set: CommandModule = {
  command: 'set <name> <config..>',
  describe: 'Change a pool: description=..., size=... (grows a btrfs loop file)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }).positional('config', { type: 'string', array: true, demandOption: true }),
  handler: async (argv) => {
    const { setPool } = await import('../../storage/manage.js');
    await setPool(context(), String(argv.name), parseKeyValues(argv.config, 'pool setting'));
  },
};

const del: CommandModule = {
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete an unused storage pool',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { deletePool } = await import('../../storage/manage.js');
    await deletePool(context(), String(argv.name));
    console.log(`Storage pool ${String(argv.name)} deleted`);
  },
};

const command: CommandModule = {
  command: 'storage <command>',
  describe: 'Manage storage pools',
  builder: (y) => y.command(list).command(create).command(show).command(info).command(set).command(del).demandCommand(1),
  handler: () => {},
};
export default command;
