import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { splitKeyValue } from '../../util/keyvalue.js';
import { renderRows, renderValue } from '../ui/format.js';
import trust from './config-trust.js';
import { target } from '../target.js';

/**
 * `tslxc config ...`: a container's own config keys and devices. The library validates every
 * change against the schema and the host and applies limits live on a running container.
 */

/** "KEY VALUE" (one pair, as LXD) or "KEY=VALUE..." into a map. */
export function parseSetArgs(args: string[]): Record<string, string> {
  if (args.length === 2 && !args[0]!.includes('=')) return { [args[0]!]: args[1]! };
  const out: Record<string, string> = {};
  for (const a of args) {
    const kv = splitKeyValue(a);
    if (!kv) throw new TslxcError(`Invalid argument "${a.slice(0, 60)}"`, 'expected KEY=VALUE (or a single KEY VALUE)');
    out[kv[0]] = kv[1];
  }
  return out;
}

/** "TYPE k=v..." for device add; TYPE may also be given as type=... */
export function parseDeviceArgs(args: string[]): Record<string, string> {
  const dev: Record<string, string> = {};
  for (const [i, a] of args.entries()) {
    const kv = splitKeyValue(a);
    if (!a.includes('=') && i === 0) dev.type = a;
    else if (!kv) throw new TslxcError(`Invalid device argument "${a.slice(0, 60)}"`, 'expected KEY=VALUE after the type');
    else dev[kv[0]] = kv[1];
  }
  return dev;
}

export function printNotes(notes: string[]): void {
  for (const n of notes) process.stderr.write(`Note: ${n}\n`);
}

const set = defineCommand({
  command: 'set <name> <settings..>',
  describe: 'Set config keys: KEY=VALUE... or KEY VALUE (applied live to a running container)',
  positionals: { name: { kind: 'container', describe: 'container name' }, settings: { kind: 'key=value' } },
  run: async (argv) => {
    const settings = parseSetArgs((argv.settings as unknown[]).map(String));
    const t = target(String(argv.name));
    if (t.remote) return (await import('../remote/config.js')).remoteConfigEdit(t.remote, t.name, (c) => Object.assign(c, settings));
    const { setConfig } = await import('../../instance/configure.js');
    const r = await setConfig(context(), t.name, settings);
    printNotes(r.notes);
  },
});

const unset = defineCommand({
  command: 'unset <name> <keys..>',
  describe: 'Remove config keys from a container',
  positionals: { name: { kind: 'container', describe: 'container name' }, keys: { kind: 'config key' } },
  run: async (argv) => {
    const keys = (argv.keys as unknown[]).map(String);
    const t = target(String(argv.name));
    if (t.remote) {
      return (await import('../remote/config.js')).remoteConfigEdit(t.remote, t.name, (c) => {
        for (const k of keys) delete c[k];
      });
    }
    const { unsetConfig } = await import('../../instance/configure.js');
    await unsetConfig(context(), t.name, keys);
  },
});

const get = defineCommand({
  command: 'get <name> <key>',
  describe: "Print one key's value (empty when unset)",
  positionals: { name: { kind: 'container', describe: 'container name' }, key: { kind: 'config key' } },
  options: { expanded: { type: 'boolean', short: 'e', describe: 'the effective value, profiles included' } },
  run: async (argv) => {
    const { showConfig } = await import('../../instance/configure.js');
    const r = showConfig(context(), String(argv.name), !!argv.expanded);
    const key = String(argv.key);
    const v = r.expanded ? (r.expanded.config[key] ?? r.expanded.readOnly[key]) : r.config.config?.[key];
    console.log(v ?? '');
  },
});

const show = defineCommand({
  command: 'show <name>',
  describe: "Show a container's config; --expanded: with its profiles applied, and where each value came from",
  positionals: { name: { kind: 'container', describe: 'container name' } },
  options: {
    expanded: { type: 'boolean', short: 'e', describe: 'profiles applied, with the source of each value' },
    format: { type: 'string', short: 'f', choices: ['table', 'yaml', 'json'], describe: 'default: yaml, or table with --expanded' },
  },
  run: async (argv) => {
    const t = target(String(argv.name));
    if (t.remote) {
      const { remoteConfigShow } = await import('../remote/config.js');
      console.log(await remoteConfigShow(t.remote, t.name, !!argv.expanded, argv.format === 'json' ? 'json' : 'yaml'));
      return;
    }
    const { showConfig } = await import('../../instance/configure.js');
    const ctx = context();
    const r = showConfig(ctx, t.name, !!argv.expanded);
    const c = r.config;
    const { metadataOrigins } = await import('../../image/overrides.js');
    const meta = metadataOrigins(ctx.paths, c);
    const metaDoc = Object.fromEntries(
      meta
        .filter((m) => !m.key.startsWith('image.'))
        .map((m) => [m.key, { value: m.value, from: m.from, ...(m.image !== undefined ? { image: m.image } : {}) }]),
    );
    if (!r.expanded) {
      const doc = {
        name: c.name,
        description: c.description ?? '',
        ...(c.ephemeral ? { ephemeral: true } : {}),
        profiles: c.profiles ?? [],
        config: c.config ?? {},
        devices: c.devices ?? {},
        image: Object.fromEntries(meta.filter((m) => m.key.startsWith('image.')).map((m) => [m.key.slice(6), m.value])),
        metadata: metaDoc,
      };
      console.log(renderValue(doc, argv.format === 'json' ? 'json' : 'yaml'));
      return;
    }
    const ex = r.expanded;
    const format = (argv.format as string | undefined) ?? 'table';
    if (format !== 'table') {
      const doc = {
        name: c.name,
        profiles: c.profiles ?? [],
        config: Object.fromEntries(Object.entries(ex.config).map(([k, v]) => [k, { value: v, from: ex.sources[k] }])),
        devices: Object.fromEntries(Object.entries(ex.devices).map(([k, v]) => [k, { ...v, from: ex.sources[`devices.${k}`] }])),
        image: ex.readOnly,
        metadata: metaDoc,
      };
      console.log(renderValue(doc, format as 'json' | 'yaml'));
      return;
    }
    const rows: Array<{ key: string; value: string; from: string }> = [];
    for (const k of Object.keys(ex.config).sort()) rows.push({ key: k, value: ex.config[k]!, from: ex.sources[k]! });
    for (const [dn, dev] of Object.entries(ex.devices)) {
      rows.push({
        key: `devices.${dn}`,
        value: Object.entries(dev)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
        from: ex.sources[`devices.${dn}`]!,
      });
    }
    for (const [k, src] of Object.entries(ex.sources))
      if (src.endsWith('(removed)')) rows.push({ key: k, value: '(removed)', from: src.replace(' (removed)', '') });
    for (const [k, v] of Object.entries(ex.readOnly)) rows.push({ key: k, value: v, from: 'image (read-only)' });
    for (const m of meta)
      if (!m.key.startsWith('image.')) rows.push({ key: m.key, value: m.value, from: m.image !== undefined ? `${m.from} (image: ${m.image})` : m.from });
    console.log(`profiles: ${(c.profiles ?? []).join(', ') || '(none)'}`);
    console.log(
      renderRows(
        rows,
        [
          { header: 'KEY', value: (r) => r.key },
          { header: 'VALUE', value: (r) => r.value },
          { header: 'FROM', value: (r) => r.from },
        ],
        'table',
      ),
    );
  },
});

const edit = defineCommand({
  command: 'edit <name>',
  describe: 'Edit profiles, config and devices as YAML ($EDITOR on a terminal, else stdin); validated before saving',
  positionals: { name: { kind: 'container', describe: 'container name' } },
  run: async (argv) => {
    const { showConfig, replaceConfig } = await import('../../instance/configure.js');
    const { editText } = await import('../ui/editor.js');
    const yaml = (await import('js-yaml')).default;
    const ctx = context();
    const n = String(argv.name);
    const c = showConfig(ctx, n, false).config;
    const text = await editText(
      yaml.dump({ description: c.description ?? '', profiles: c.profiles ?? [], config: c.config ?? {}, devices: c.devices ?? {} }, { lineWidth: 120 }),
      n,
    );
    let doc: unknown;
    try {
      doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
    } catch (err) {
      throw new TslxcError(`Invalid YAML for "${n}"`, (err as Error).message.split('\n')[0], 'nothing was changed');
    }
    const r = await replaceConfig(ctx, n, parseConfigDoc(doc, n));
    printNotes(r.notes);
  },
});

/** The edited document: profiles (list), config (map of strings), devices (map of maps). */
export function parseConfigDoc(
  doc: unknown,
  n: string,
): { config: Record<string, string>; devices: Record<string, Record<string, string>>; profiles: string[]; description?: string } {
  const bad = (why: string) => new TslxcError(`Invalid config for "${n}"`, why, 'nothing was changed');
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('expected a mapping with profiles, config and devices');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d))
    if (!['name', 'description', 'profiles', 'config', 'devices'].includes(k))
      throw bad(`unknown key "${k}" (allowed: description, profiles, config, devices)`);
  const profiles = d.profiles ?? [];
  if (!Array.isArray(profiles)) throw bad('"profiles" must be a list');
  const asMap = (v: unknown, what: string): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw bad(`"${what}" must be a mapping`);
    return v as Record<string, unknown>;
  };
  const config = Object.fromEntries(Object.entries(asMap(d.config, 'config')).map(([k, v]) => [k, String(v)]));
  const devices: Record<string, Record<string, string>> = {};
  for (const [dn, dev] of Object.entries(asMap(d.devices, 'devices')))
    devices[dn] = Object.fromEntries(Object.entries(asMap(dev, `devices.${dn}`)).map(([k, v]) => [k, String(v)]));
  if (d.description !== undefined && d.description !== null && typeof d.description !== 'string') throw bad('"description" must be a string');
  return { config, devices, profiles: profiles.map(String), ...(typeof d.description === 'string' ? { description: d.description } : {}) };
}

const keys = defineCommand({
  command: 'keys',
  describe: 'List the config keys tslxc knows',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { configKeys } = await import('../../config/schema.js');
    const rows = configKeys().map((k) => ({ key: k.key.endsWith('.') ? `${k.key}*` : k.key, describe: k.describe }));
    console.log(
      renderRows(
        rows,
        [
          { header: 'KEY', value: (r) => r.key },
          { header: 'MEANING', value: (r) => r.describe },
        ],
        argv.format as Format,
      ),
    );
  },
});

// --- devices

const deviceAdd = defineCommand({
  command: 'add <name> <device> [args..]',
  describe: 'Add a device: TYPE [KEY=VALUE...] (type "none" hides a device inherited from a profile)',
  positionals: { name: { kind: 'container', describe: 'container name' }, device: { kind: 'new device' }, args: { kind: 'key=value' } },
  run: async (argv) => {
    const { addDevice } = await import('../../instance/configure.js');
    const r = await addDevice(context(), String(argv.name), String(argv.device), parseDeviceArgs(((argv.args as unknown[]) ?? []).map(String)));
    printNotes(r.notes);
  },
});

const deviceRemove = defineCommand({
  command: 'remove <name> <device>',
  aliases: ['rm'],
  describe: 'Remove a device of the container',
  positionals: { name: { kind: 'container', describe: 'container name' }, device: { kind: 'device' } },
  run: async (argv) => {
    const { removeDevice } = await import('../../instance/configure.js');
    const r = await removeDevice(context(), String(argv.name), String(argv.device));
    printNotes(r.notes);
  },
});

const deviceList = defineCommand({
  command: 'list <name>',
  aliases: ['ls'],
  describe: "List the container's devices (profiles included) and where each came from",
  positionals: { name: { kind: 'container', describe: 'container name' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { showConfig } = await import('../../instance/configure.js');
    const ex = showConfig(context(), String(argv.name), true).expanded!;
    const rows = Object.entries(ex.devices).map(([dn, dev]) => ({ name: dn, type: dev.type ?? '', from: ex.sources[`devices.${dn}`] ?? '' }));
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'TYPE', value: (r) => r.type },
          { header: 'FROM', value: (r) => r.from },
        ],
        argv.format as Format,
      ),
    );
  },
});

const deviceShow = defineCommand({
  command: 'show <name>',
  describe: "Show the container's own devices as YAML",
  positionals: { name: { kind: 'container', describe: 'container name' } },
  run: async (argv) => {
    const { showConfig } = await import('../../instance/configure.js');
    console.log(renderValue(showConfig(context(), String(argv.name), false).config.devices ?? {}, 'yaml'));
  },
});

const device = defineGroup({
  command: 'device <command>',
  describe: "Manage a container's devices",
  subcommands: [deviceAdd, deviceRemove, deviceList, deviceShow],
});

export default defineGroup({
  command: 'config <command>',
  describe: "Manage a container's config keys and devices, and who the API trusts",
  subcommands: [set, unset, get, show, edit, keys, device, trust],
});
