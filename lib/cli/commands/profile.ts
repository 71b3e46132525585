import type { Argv, CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { renderRows, renderValue, type Format } from '../ui/format.js';
import { parseDeviceArgs, parseSetArgs, printNotes } from './config.js';

/**
 * `tslxc profile ...`: profiles themselves, and (add/remove/assign) which profiles a container
 * has. A change to a profile is applied at once to every running container that uses it.
 */
const prof = <T>(y: Argv<T>) => y.positional('profile', { type: 'string', demandOption: true, describe: 'profile name' });
const ct = <T>(y: Argv<T>) => y.positional('name', { type: 'string', demandOption: true, describe: 'container name' });

function reportApplied(applied: string[]): void {
  if (applied.length > 0) process.stderr.write(`Applied to running container(s): ${applied.join(', ')}\n`);
}

const list: CommandModule = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List profiles (built-in and your own) and how many containers use each',
  builder: (y) => withFormat(y),
  handler: async (argv) => {
    const { listProfiles, usedBy } = await import('../../instance/profiles.js');
    const ctx = context();
    const rows = listProfiles(ctx.paths).map((p) => ({ ...p, used_by: usedBy(ctx, p.name) }));
    console.log(
      renderRows(rows, [
        { header: 'NAME', value: (r) => r.name },
        { header: 'DESCRIPTION', value: (r) => r.description },
        { header: 'SOURCE', value: (r) => (r.builtin ? 'built-in' : 'user') },
        { header: 'USED BY', value: (r) => r.used_by.length },
      ], argv.format as Format),
    );
  },
};

const show: CommandModule = {
  command: 'show <profile>',
  describe: 'Show a profile as YAML, with the containers using it',
  builder: (y) => prof(y).option('format', { alias: 'f', choices: ['yaml', 'json'], default: 'yaml' }),
  handler: async (argv) => {
    const { loadProfile, usedBy } = await import('../../instance/profiles.js');
    const ctx = context();
    const p = loadProfile(ctx.paths, String(argv.profile));
    console.log(renderValue({ name: p.name, description: p.description, config: p.config, devices: p.devices, used_by: usedBy(ctx, p.name) }, argv.format as 'yaml' | 'json'));
  },
};

const create: CommandModule = {
  command: 'create <profile>',
  describe: 'Create an empty profile',
  builder: (y) => prof(y).option('description', { alias: 'd', type: 'string' }),
  handler: async (argv) => {
    const { createProfile } = await import('../../instance/profiles.js');
    await createProfile(context(), String(argv.profile), { description: argv.description as string | undefined });
    console.log(`Profile ${argv.profile} created`);
  },
};

const copy: CommandModule = {
  command: 'copy <profile> <target>',
  aliases: ['cp'],
  describe: 'Copy a profile',
  builder: (y) => prof(y).positional('target', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { copyProfile } = await import('../../instance/profiles.js');
    await copyProfile(context(), String(argv.profile), String(argv.target));
  },
};

const edit: CommandModule = {
  command: 'edit <profile>',
  describe: 'Edit a profile as YAML ($EDITOR on a terminal, else stdin); validated before saving',
  builder: (y) => prof(y),
  handler: async (argv) => {
    const { loadProfile, profileYaml, replaceProfileFromYaml } = await import('../../instance/profiles.js');
    const { editText } = await import('../ui/editor.js');
    const ctx = context();
    const name = String(argv.profile);
    const text = await editText(profileYaml(loadProfile(ctx.paths, name)), name);
    reportApplied((await replaceProfileFromYaml(ctx, name, text)).applied);
  },
};

const rename: CommandModule = {
  command: 'rename <profile> <newname>',
  aliases: ['mv'],
  describe: 'Rename a profile; containers using it follow',
  builder: (y) => prof(y).positional('newname', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { renameProfile } = await import('../../instance/profiles.js');
    const updated = await renameProfile(context(), String(argv.profile), String(argv.newname));
    if (updated.length) process.stderr.write(`Updated container(s): ${updated.join(', ')}\n`);
  },
};

const del: CommandModule = {
  command: 'delete <profile>',
  aliases: ['rm'],
  describe: 'Delete a profile (refused while a container uses it)',
  builder: (y) => prof(y),
  handler: async (argv) => {
    const { deleteProfile } = await import('../../instance/profiles.js');
    await deleteProfile(context(), String(argv.profile));
  },
};

const set: CommandModule = {
  command: 'set <profile> <settings..>',
  describe: 'Set keys on a profile: KEY=VALUE... or KEY VALUE',
  builder: (y) => prof(y).positional('settings', { type: 'string', array: true }),
  handler: async (argv) => {
    const { setProfileKeys } = await import('../../instance/profiles.js');
    reportApplied((await setProfileKeys(context(), String(argv.profile), parseSetArgs((argv.settings as unknown[]).map(String)))).applied);
  },
};

const unset: CommandModule = {
  command: 'unset <profile> <keys..>',
  describe: 'Remove keys from a profile',
  builder: (y) => prof(y).positional('keys', { type: 'string', array: true }),
  handler: async (argv) => {
    const { unsetProfileKeys } = await import('../../instance/profiles.js');
    reportApplied((await unsetProfileKeys(context(), String(argv.profile), (argv.keys as unknown[]).map(String))).applied);
  },
};

const get: CommandModule = {
  command: 'get <profile> <key>',
  describe: 'Print a profile key\'s value (empty when unset)',
  builder: (y) => prof(y).positional('key', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    console.log(loadProfile(context().paths, String(argv.profile)).config[String(argv.key)] ?? '');
  },
};

const deviceAdd: CommandModule = {
  command: 'add <profile> <device> [args..]',
  describe: 'Add a device: TYPE [KEY=VALUE...]',
  builder: (y) => prof(y).positional('device', { type: 'string', demandOption: true }).positional('args', { type: 'string', array: true }),
  handler: async (argv) => {
    const { addProfileDevice } = await import('../../instance/profiles.js');
    reportApplied((await addProfileDevice(context(), String(argv.profile), String(argv.device), parseDeviceArgs(((argv.args as unknown[]) ?? []).map(String)))).applied);
  },
};

const deviceRemove: CommandModule = {
  command: 'remove <profile> <device>',
  aliases: ['rm'],
  describe: 'Remove a device from a profile',
  builder: (y) => prof(y).positional('device', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { removeProfileDevice } = await import('../../instance/profiles.js');
    reportApplied((await removeProfileDevice(context(), String(argv.profile), String(argv.device))).applied);
  },
};

const deviceList: CommandModule = {
  command: 'list <profile>',
  aliases: ['ls'],
  describe: 'List a profile\'s devices',
  builder: (y) => withFormat(prof(y)),
  handler: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    const rows = Object.entries(loadProfile(context().paths, String(argv.profile)).devices).map(([name, d]) => ({ name, type: d.type ?? '' }));
    console.log(renderRows(rows, [{ header: 'NAME', value: (r) => r.name }, { header: 'TYPE', value: (r) => r.type }], argv.format as Format));
  },
};

const deviceShow: CommandModule = {
  command: 'show <profile>',
  describe: 'Show a profile\'s devices as YAML',
  builder: (y) => prof(y),
  handler: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    console.log(renderValue(loadProfile(context().paths, String(argv.profile)).devices, 'yaml'));
  },
};

const device: CommandModule = {
  command: 'device <command>',
  describe: 'Manage a profile\'s devices',
  builder: (y) => y.command(deviceAdd).command(deviceRemove).command(deviceList).command(deviceShow).demandCommand(1),
  handler: () => {},
};

// Which profiles a container has (LXD: lxc profile add|remove|assign INSTANCE PROFILE).
const add: CommandModule = {
  command: 'add <name> <profile>',
  describe: 'Apply a profile to a container (last, so it wins over earlier ones)',
  builder: (y) => prof(ct(y)),
  handler: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    printNotes((await setProfiles(context(), String(argv.name), { add: String(argv.profile) })).notes);
  },
};

const remove: CommandModule = {
  command: 'remove <name> <profile>',
  describe: 'Take a profile off a container',
  builder: (y) => prof(ct(y)),
  handler: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    printNotes((await setProfiles(context(), String(argv.name), { remove: String(argv.profile) })).notes);
  },
};

const assign: CommandModule = {
  command: 'assign <name> [profiles..]',
  describe: 'Set a container\'s profiles, in order (comma-separated or several arguments; none for no profile)',
  builder: (y) => ct(y).positional('profiles', { type: 'string', array: true }),
  handler: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    const list = ((argv.profiles as unknown[]) ?? []).flatMap((p) => String(p).split(',')).map((p) => p.trim()).filter(Boolean);
    printNotes((await setProfiles(context(), String(argv.name), { assign: list })).notes);
  },
};

const command: CommandModule = {
  command: 'profile <command>',
  describe: 'Manage profiles, and which profiles a container has',
  builder: (y) =>
    y
      .command(list)
      .command(show)
      .command(create)
      .command(copy)
      .command(edit)
      .command(rename)
      .command(del)
      .command(set)
      .command(unset)
      .command(get)
      .command(device)
      .command(add)
      .command(remove)
      .command(assign)
      .demandCommand(1),
  handler: () => {},
};
export default command;
