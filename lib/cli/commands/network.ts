import { context, parseKeyValues } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows, renderValue } from '../ui/format.js';
import { printNotes } from './config.js';

/** `tslxc network ...`: managed bridges with DHCP/DNS (dnsmasq), NAT and port forwards (nftables). */

const keyValues = (items: unknown) => parseKeyValues(items, 'setting');

const lib = () => import('../../network/manage.js');
const paths = () => context().paths;

const create = defineCommand({
  command: 'create <name> [config..]',
  describe: 'Create a managed network (bridge, DHCP, DNS): KEY=VALUE like ipv4.address=auto ipv4.nat=false',
  positionals: { name: { kind: 'new network' }, config: { kind: 'key=value' } },
  options: { description: { type: 'string', default: '' } },
  run: async (argv) => {
    const { createNetwork } = await lib();
    const net = await createNetwork(paths(), String(argv.name), keyValues(argv.config), String(argv.description));
    console.log(`Network ${net.name} created (${net.config['ipv4.address']})`);
  },
});

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List managed networks',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { summarize } = await lib();
    const { listNetworkNames } = await import('../../network/store.js');
    const p = paths();
    const rows = listNetworkNames(p).map((n) => summarize(p, n));
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'IPV4', value: (r) => r.ipv4 ?? 'none' },
          { header: 'IPV6', value: (r) => r.ipv6 ?? 'none' },
          { header: 'NAT', value: (r) => String(r.nat) },
          { header: 'DOMAIN', value: (r) => r.domain },
          { header: 'STATE', value: (r) => r.state.toUpperCase() },
          { header: 'USED BY', value: (r) => r.usedBy.length },
        ],
        argv.format as Format,
      ),
    );
  },
});

const show = defineCommand({
  command: 'show <name>',
  describe: "Show a network's configuration (YAML)",
  positionals: { name: { kind: 'network' } },
  run: async (argv) => {
    const { loadNetwork } = await import('../../network/store.js');
    const net = loadNetwork(paths(), String(argv.name));
    console.log(renderValue({ name: net.name, description: net.description, config: net.config }, 'yaml'));
  },
});

const info = defineCommand({
  command: 'info <name>',
  describe: "Show a network's state: bridge, dnsmasq, users",
  positionals: { name: { kind: 'network' } },
  options: { format: { type: 'string', short: 'f', choices: ['text', 'json', 'yaml'], default: 'text' } },
  run: async (argv) => {
    const { summarize, listLeases } = await lib();
    const p = paths();
    const s = summarize(p, String(argv.name));
    const leases = listLeases(p, s.name).length;
    if (argv.format !== 'text') {
      console.log(renderValue({ ...s, leases }, argv.format as 'json' | 'yaml'));
      return;
    }
    const lines: Array<[string, string | number | undefined]> = [
      ['Name', s.name],
      ['Description', s.description],
      ['State', s.state.toUpperCase()],
      ['Bridge', s.name],
      ['IPv4', s.ipv4 ?? 'none'],
      ['IPv6', s.ipv6 ?? 'none'],
      ['NAT', String(s.nat)],
      ['DNS domain', s.domain],
      ['MTU', s.mtu],
      ['dnsmasq PID', s.dnsmasqPid],
      ['Leases', leases],
      ['Running', s.running.join(', ')],
      ['Used by', s.usedBy.join(', ')],
    ];
    for (const [k, v] of lines) if (v !== undefined && v !== '') console.log(`${k}: ${v}`);
  },
});

const set = defineCommand({
  command: 'set <name> <config..>',
  describe: 'Set network keys: KEY=VALUE... (or KEY VALUE)',
  positionals: { name: { kind: 'network' }, config: { kind: 'key=value' } },
  run: async (argv) => {
    const { updateNetwork } = await lib();
    const items = (argv.config as string[]).map(String);
    const kv = items.length === 2 && !items[0].includes('=') ? { [items[0]]: items[1] } : keyValues(items);
    await updateNetwork(paths(), String(argv.name), (net) => Object.assign(net.config, kv));
  },
});

const unset = defineCommand({
  command: 'unset <name> <key>',
  describe: 'Remove a network key (back to its default)',
  positionals: { name: { kind: 'network' }, key: { kind: 'config key' } },
  run: async (argv) => {
    const { updateNetwork } = await lib();
    await updateNetwork(paths(), String(argv.name), (net) => {
      delete net.config[String(argv.key)];
    });
  },
});

const edit = defineCommand({
  command: 'edit <name>',
  describe: 'Edit a network as YAML (in $EDITOR, or read from stdin when it is not a terminal)',
  positionals: { name: { kind: 'network' } },
  run: async (argv) => {
    const { updateNetwork } = await lib();
    const { loadNetwork } = await import('../../network/store.js');
    const { TslxcError } = await import('../../errors.js');
    const yaml = (await import('js-yaml')).default;
    const fs = await import('node:fs');
    const p = paths();
    const name = String(argv.name);
    let text: string;
    if (process.stdin.isTTY) {
      const os = await import('node:os');
      const { spawnSync } = await import('node:child_process');
      const net = loadNetwork(p, name);
      const tmp = `${fs.mkdtempSync(`${os.tmpdir()}/tslxc-edit-`)}/${name}.yaml`;
      fs.writeFileSync(tmp, yaml.dump({ description: net.description, config: net.config }));
      spawnSync(process.env.VISUAL || process.env.EDITOR || 'vi', [tmp], { stdio: 'inherit' });
      text = fs.readFileSync(tmp, 'utf8');
      fs.rmSync(tmp.slice(0, tmp.lastIndexOf('/')), { recursive: true, force: true });
    } else {
      text = fs.readFileSync(0, 'utf8');
    }
    let doc: { description?: unknown; config?: Record<string, unknown> };
    try {
      doc = (yaml.load(text, { schema: yaml.CORE_SCHEMA }) ?? {}) as typeof doc;
    } catch (err) {
      throw new TslxcError(`Cannot edit network "${name}"`, `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new TslxcError(`Cannot edit network "${name}"`, 'expected a mapping with description and config');
    for (const k of Object.keys(doc))
      if (!['name', 'description', 'config'].includes(k)) throw new TslxcError(`Cannot edit network "${name}"`, `unknown key "${k}"`);
    await updateNetwork(p, name, (net) => {
      net.description = doc.description === undefined ? '' : String(doc.description);
      net.config = Object.fromEntries(Object.entries(doc.config ?? {}).map(([k, v]) => [k, String(v)]));
    });
  },
});

const rename = defineCommand({
  command: 'rename <from> <to>',
  describe: 'Rename a network that nothing uses (the bridge is renamed too)',
  positionals: { from: { kind: 'network' }, to: { kind: 'new network' } },
  run: async (argv) => {
    const { renameNetwork } = await lib();
    await renameNetwork(paths(), String(argv.from), String(argv.to));
  },
});

const del = defineCommand({
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete a network nothing uses: bridge, dnsmasq, its nft rules',
  positionals: { name: { kind: 'network' } },
  run: async (argv) => {
    const { deleteNetwork } = await lib();
    await deleteNetwork(paths(), String(argv.name));
  },
});

const leases = defineCommand({
  command: 'list-leases <name>',
  describe: 'DHCP leases of a network',
  positionals: { name: { kind: 'network' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { listLeases } = await lib();
    const rows = listLeases(paths(), String(argv.name));
    console.log(
      renderRows(
        rows,
        [
          { header: 'HOSTNAME', value: (r) => r.hostname || r.container },
          { header: 'MAC ADDRESS', value: (r) => r.hwaddr },
          { header: 'IP ADDRESS', value: (r) => r.ipv4 },
          { header: 'TYPE', value: (r) => r.type.toUpperCase() },
          { header: 'EXPIRES', value: (r) => (r.expiry ? new Date(r.expiry * 1000).toISOString().slice(0, 19).replace('T', ' ') : 'never') },
        ],
        argv.format as Format,
      ),
    );
  },
});

const attach = defineCommand({
  command: 'attach <network> <container> [device] [interface]',
  describe: 'Give a container a nic on a network (a running one gets it at once)',
  positionals: {
    network: { kind: 'network' },
    container: { kind: 'container' },
    device: { kind: 'new device', describe: "device name (default: the network's name)" },
    interface: { kind: 'text', describe: 'name inside (default: the device name)' },
  },
  run: async (argv) => {
    const { attachNetwork } = await import('../../instance/network-attach.js');
    printNotes(
      (await attachNetwork(context(), String(argv.network), String(argv.container), argv.device as string | undefined, argv.interface as string | undefined))
        .notes,
    );
  },
});

const detach = defineCommand({
  command: 'detach <network> <container> [device]',
  describe: "Remove a container's nic(s) on a network (from a running one at once)",
  positionals: { network: { kind: 'network' }, container: { kind: 'container' }, device: { kind: 'device' } },
  run: async (argv) => {
    const { detachNetwork } = await import('../../instance/network-attach.js');
    printNotes((await detachNetwork(context(), String(argv.network), String(argv.container), argv.device as string | undefined)).notes);
  },
});

/** Run by a container's post-stop hook: release its reservations, leases and forwards. */
const releaseInstance = defineCommand({
  command: 'release-instance <container>',
  describe: false,
  positionals: { container: { kind: 'container' } },
  run: async (argv) => {
    const { releaseNetwork } = await import('../../network/instance.js');
    await releaseNetwork(context(), String(argv.container));
  },
});

export default defineGroup({
  command: 'network <command>',
  describe: 'Manage networks (bridges with DHCP, DNS, NAT and port forwards)',
  subcommands: [create, list, show, info, set, unset, edit, rename, del, leases, attach, detach, releaseInstance],
});
