import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows, renderValue } from '../ui/format.js';
import { parseDeviceArgs, parseSetArgs, printNotes } from './config.js';

/**
 * `tslxc profile ...`: profiles themselves, and (add/remove/assign) which profiles a container
 * has. A change to a profile is applied at once to every running container that uses it.
 */

function reportApplied(applied: string[]): void {
  if (applied.length > 0) process.stderr.write(`Applied to running container(s): ${applied.join(', ')}\n`);
}

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List profiles (built-in and your own) and how many containers use each',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { listProfiles, usedBy } = await import('../../instance/profiles.js');
    const ctx = context();
    const rows = listProfiles(ctx.paths).map((p) => ({ ...p, used_by: usedBy(ctx, p.name) }));
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'DESCRIPTION', value: (r) => r.description },
          { header: 'SOURCE', value: (r) => (r.builtin ? 'built-in' : 'user') },
          { header: 'USED BY', value: (r) => r.used_by.length },
        ],
        argv.format as Format,
      ),
    );
  },
});

const show = defineCommand({
  command: 'show <profile>',
  describe: 'Show a profile as YAML, with the containers using it',
  positionals: { profile: { kind: 'profile', describe: 'profile name' } },
  options: { format: { type: 'string', short: 'f', choices: ['yaml', 'json'], default: 'yaml' } },
  run: async (argv) => {
    const { loadProfile, usedBy } = await import('../../instance/profiles.js');
    const ctx = context();
    const p = loadProfile(ctx.paths, String(argv.profile));
    console.log(
      renderValue(
        { name: p.name, description: p.description, config: p.config, devices: p.devices, used_by: usedBy(ctx, p.name) },
        argv.format as 'yaml' | 'json',
      ),
    );
  },
});

const create = defineCommand({
  command: 'create <profile>',
  describe: 'Create an empty profile',
  positionals: { profile: { kind: 'new profile', describe: 'profile name' } },
  options: { description: { type: 'string', short: 'd' } },
  run: async (argv) => {
    const { createProfile } = await import('../../instance/profiles.js');
    await createProfile(context(), String(argv.profile), { description: argv.description as string | undefined });
    console.log(`Profile ${argv.profile} created`);
  },
});

const copy = defineCommand({
  command: 'copy <profile> <target>',
  aliases: ['cp'],
  describe: 'Copy a profile',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, target: { kind: 'new profile' } },
  run: async (argv) => {
    const { copyProfile } = await import('../../instance/profiles.js');
    await copyProfile(context(), String(argv.profile), String(argv.target));
  },
});

const edit = defineCommand({
  command: 'edit <profile>',
  describe: 'Edit a profile as YAML ($EDITOR on a terminal, else stdin); validated before saving',
  positionals: { profile: { kind: 'profile', describe: 'profile name' } },
  run: async (argv) => {
    const { loadProfile, profileYaml, replaceProfileFromYaml } = await import('../../instance/profiles.js');
    const { editText } = await import('../ui/editor.js');
    const ctx = context();
    const name = String(argv.profile);
    const text = await editText(profileYaml(loadProfile(ctx.paths, name)), name);
    reportApplied((await replaceProfileFromYaml(ctx, name, text)).applied);
  },
});

const rename = defineCommand({
  command: 'rename <profile> <newname>',
  aliases: ['mv'],
  describe: 'Rename a profile; containers using it follow',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, newname: { kind: 'new profile' } },
  run: async (argv) => {
    const { renameProfile } = await import('../../instance/profiles.js');
    const updated = await renameProfile(context(), String(argv.profile), String(argv.newname));
    if (updated.length) process.stderr.write(`Updated container(s): ${updated.join(', ')}\n`);
  },
});

const del = defineCommand({
  command: 'delete <profile>',
  aliases: ['rm'],
  describe: 'Delete a profile (refused while a container uses it)',
  positionals: { profile: { kind: 'profile', describe: 'profile name' } },
  run: async (argv) => {
    const { deleteProfile } = await import('../../instance/profiles.js');
    await deleteProfile(context(), String(argv.profile));
  },
});

const set = defineCommand({
  command: 'set <profile> <settings..>',
  describe: 'Set keys on a profile: KEY=VALUE... or KEY VALUE',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, settings: { kind: 'key=value' } },
  run: async (argv) => {
    const { setProfileKeys } = await import('../../instance/profiles.js');
    reportApplied((await setProfileKeys(context(), String(argv.profile), parseSetArgs((argv.settings as unknown[]).map(String)))).applied);
  },
});

const unset = defineCommand({
  command: 'unset <profile> <keys..>',
  describe: 'Remove keys from a profile',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, keys: { kind: 'config key' } },
  run: async (argv) => {
    const { unsetProfileKeys } = await import('../../instance/profiles.js');
    reportApplied((await unsetProfileKeys(context(), String(argv.profile), (argv.keys as unknown[]).map(String))).applied);
  },
});

const get = defineCommand({
  command: 'get <profile> <key>',
  describe: "Print a profile key's value (empty when unset)",
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, key: { kind: 'config key' } },
  run: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    console.log(loadProfile(context().paths, String(argv.profile)).config[String(argv.key)] ?? '');
  },
});

const deviceAdd = defineCommand({
  command: 'add <profile> <device> [args..]',
  describe: 'Add a device: TYPE [KEY=VALUE...]',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, device: { kind: 'new device' }, args: { kind: 'key=value' } },
  run: async (argv) => {
    const { addProfileDevice } = await import('../../instance/profiles.js');
    reportApplied(
      (await addProfileDevice(context(), String(argv.profile), String(argv.device), parseDeviceArgs(((argv.args as unknown[]) ?? []).map(String)))).applied,
    );
  },
});

const deviceRemove = defineCommand({
  command: 'remove <profile> <device>',
  aliases: ['rm'],
  describe: 'Remove a device from a profile',
  positionals: { profile: { kind: 'profile', describe: 'profile name' }, device: { kind: 'device' } },
  run: async (argv) => {
    const { removeProfileDevice } = await import('../../instance/profiles.js');
    reportApplied((await removeProfileDevice(context(), String(argv.profile), String(argv.device))).applied);
  },
});

const deviceList = defineCommand({
  command: 'list <profile>',
  aliases: ['ls'],
  describe: "List a profile's devices",
  positionals: { profile: { kind: 'profile', describe: 'profile name' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    const rows = Object.entries(loadProfile(context().paths, String(argv.profile)).devices).map(([name, d]) => ({ name, type: d.type ?? '' }));
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'TYPE', value: (r) => r.type },
        ],
        argv.format as Format,
      ),
    );
  },
});

const deviceShow = defineCommand({
  command: 'show <profile>',
  describe: "Show a profile's devices as YAML",
  positionals: { profile: { kind: 'profile', describe: 'profile name' } },
  run: async (argv) => {
    const { loadProfile } = await import('../../instance/profiles.js');
    console.log(renderValue(loadProfile(context().paths, String(argv.profile)).devices, 'yaml'));
  },
});

const device = defineGroup({
  command: 'device <command>',
  describe: "Manage a profile's devices",
  subcommands: [deviceAdd, deviceRemove, deviceList, deviceShow],
});

// Which profiles a container has (LXD: lxc profile add|remove|assign INSTANCE PROFILE).
const add = defineCommand({
  command: 'add <name> <profile>',
  describe: 'Apply a profile to a container (last, so it wins over earlier ones)',
  positionals: { name: { kind: 'container', describe: 'container name' }, profile: { kind: 'profile', describe: 'profile name' } },
  run: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    printNotes((await setProfiles(context(), String(argv.name), { add: String(argv.profile) })).notes);
  },
});

const remove = defineCommand({
  command: 'remove <name> <profile>',
  describe: 'Take a profile off a container',
  positionals: { name: { kind: 'container', describe: 'container name' }, profile: { kind: 'profile', describe: 'profile name' } },
  run: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    printNotes((await setProfiles(context(), String(argv.name), { remove: String(argv.profile) })).notes);
  },
});

const assign = defineCommand({
  command: 'assign <name> [profiles..]',
  describe: "Set a container's profiles, in order (comma-separated or several arguments; none for no profile)",
  positionals: { name: { kind: 'container', describe: 'container name' }, profiles: { kind: 'profile' } },
  run: async (argv) => {
    const { setProfiles } = await import('../../instance/configure.js');
    const list = ((argv.profiles as unknown[]) ?? [])
      .flatMap((p) => String(p).split(','))
      .map((p) => p.trim())
      .filter(Boolean);
    printNotes((await setProfiles(context(), String(argv.name), { assign: list })).notes);
  },
});

export default defineGroup({
  command: 'profile <command>',
  describe: 'Manage profiles, and which profiles a container has',
  subcommands: [list, show, create, copy, edit, rename, del, set, unset, get, device, add, remove, assign],
});
