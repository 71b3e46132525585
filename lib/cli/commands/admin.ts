import fs from 'node:fs';
import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { renderValue } from '../ui/format.js';
import type { Preseed } from '../../admin/init.js';

/**
 * `tslxc admin init`: questions on a terminal (inquirer), `--auto` for the detected defaults,
 * `--preseed FILE` (or `-` for stdin) for LXD-shaped YAML. All three build a preseed document and
 * apply it the same way; --dump prints it instead. Then the host limits containers share
 * (lib/host/sysctl.ts): asked on a terminal, raised with --raise-limits, else only noted;
 * --limits-only does that step alone.
 */
async function ask(): Promise<Preseed> {
  const { defaultPreseed } = await import('../../admin/init.js');
  const { hostFeatures } = await import('../../host/features.js');
  const { hostFacts } = await import('../../host/facts.js');
  const { validateKey } = await import('../../config/schema.js');
  const inquirer = (await import('inquirer')).default;
  const feats = hostFeatures();
  const host = hostFacts();
  const seed = defaultPreseed();
  const drivers = ['overlay', 'dir', 'btrfs'].filter((d) => (d === 'overlay' ? feats.overlay : d === 'btrfs' ? feats.btrfs : true));
  const check = (key: string) => (v: string) => {
    if (v.trim() === '') return true;
    try {
      validateKey(key, v.trim(), host);
      return true;
    } catch (err) {
      return (err as Error).message;
    }
  };
  // inquirer's question types are a large union; these plain objects are what it documents.
  const questions = [
    { type: 'input', name: 'pool', message: 'Name of the storage pool:', default: 'default' },
    { type: 'select', name: 'driver', message: 'Storage driver:', choices: drivers, default: seed.storage_pools![0]!.driver },
    { type: 'confirm', name: 'network', message: 'Create a managed bridge network (DHCP, DNS, NAT) for containers?', default: true },
    { type: 'input', name: 'bridge', message: 'Bridge name:', default: 'tslxcbr0', when: (a: Record<string, unknown>) => a.network },
    {
      type: 'input',
      name: 'subnet',
      message: 'Bridge IPv4 address and prefix ("auto" picks a free /24, "none" for no IPv4):',
      default: 'auto',
      when: (a: Record<string, unknown>) => a.network,
    },
    {
      type: 'input',
      name: 'memory',
      message: `Default memory limit for containers (e.g. 1GiB or 25%; empty for none; host has ${Math.floor(host.memoryBytes / 2 ** 30)}GiB):`,
      default: '',
      validate: check('limits.memory'),
    },
    {
      type: 'input',
      name: 'cpu',
      message: `Default CPU limit (a count or a list like 0-1; empty for none; host has ${host.cpus.length}):`,
      default: '',
      validate: check('limits.cpu'),
    },
    { type: 'input', name: 'processes', message: 'Default process limit (empty for none):', default: '', validate: check('limits.processes') },
  ];
  const a = (await (inquirer.prompt as unknown as (q: unknown[]) => Promise<Record<string, string | boolean>>)(questions)) as Record<string, string | boolean>;
  const pool = String(a.pool || 'default');
  const config: Record<string, string> = {};
  if (String(a.memory ?? '').trim()) config['limits.memory'] = String(a.memory).trim();
  if (String(a.cpu ?? '').trim()) config['limits.cpu'] = String(a.cpu).trim();
  if (String(a.processes ?? '').trim()) config['limits.processes'] = String(a.processes).trim();
  const bridge = String(a.bridge || 'tslxcbr0');
  return {
    config: {},
    storage_pools: [{ name: pool, driver: String(a.driver), config: {} }],
    networks: a.network ? [{ name: bridge, type: 'bridge', config: { 'ipv4.address': String(a.subnet || 'auto'), 'ipv4.nat': 'true' } }] : [],
    profiles: [
      {
        name: 'default',
        description: 'Default tslxc profile',
        config,
        devices: { root: { type: 'disk', path: '/', pool }, ...(a.network ? { eth0: { type: 'nic', network: bridge, name: 'eth0' } } : {}) },
      },
    ],
  };
}

/**
 * The host limits step: show the limits below LXD's values, then raise them (--raise-limits, or
 * yes to the question on a terminal), live and in sysctl.d. Without either it only says so.
 */
async function hostLimitsStep(mode: { raise: boolean; ask: boolean; required: boolean }): Promise<void> {
  const { checkHostLimits, raiseHostLimits } = await import('../../host/sysctl.js');
  const { limitsText } = await import('./host.js');
  const low = checkHostLimits({ usage: false }).filter((l) => l.status === 'low');
  if (low.length === 0) {
    if (mode.required) console.log("Host limits containers share: all at or above LXD's recommended values");
    return;
  }
  let raise = mode.raise;
  if (!raise && mode.ask) {
    console.log(limitsText(low, false));
    const inquirer = (await import('inquirer')).default;
    const q = { type: 'confirm', name: 'raise', default: true, message: `Raise these ${low.length} host limits to LXD's values now and at boot (sysctl.d)?` };
    raise = !!(await (inquirer.prompt as unknown as (q: unknown[]) => Promise<Record<string, unknown>>)([q])).raise;
  }
  if (!raise) {
    if (mode.required && !mode.ask) throw new TslxcError('admin init --limits-only needs a terminal to ask', 'stdin is not a terminal', 'add --raise-limits');
    console.log(
      `Note: ${low.length} host limits containers share are below LXD's values (${low.map((l) => l.key).join(', ')}): see "tslxc host"; raise them with "tslxc admin init --limits-only --raise-limits"`,
    );
    return;
  }
  const r = raiseHostLimits();
  for (const x of r.raised) console.log(`Raised ${x.key}: ${x.from ?? '-'} -> ${x.to}`);
  for (const x of r.failed) console.log(`Could not raise ${x.key}: ${x.why}`);
  console.log(`Host limits written to ${r.file} (read at boot by systemd-sysctl or procps)`);
}

const init = defineCommand({
  command: 'init',
  describe: 'First-run set-up: storage pool, bridge network, default limits, host limits',
  positionals: {},
  options: {
    auto: { type: 'boolean', conflicts: ['preseed'], describe: 'take the detected defaults without asking' },
    preseed: { type: 'string', dashMeansStdin: true, describe: 'apply LXD-style preseed YAML from FILE ("-" for stdin)' },
    dump: { type: 'boolean', describe: 'print the resulting preseed YAML instead of applying it' },
    'raise-limits': {
      type: 'boolean',
      describe:
        "raise the host limits containers share (inotify, ptys, keys, ...) to LXD's recommended values without asking, live and in /etc/sysctl.d/60-tslxc.conf",
    },
    'limits-only': { type: 'boolean', conflicts: ['auto', 'preseed', 'dump'], describe: 'only the host limits step: no pool, network or profile' },
  },
  run: async (argv) => {
    const tty = !!process.stdin.isTTY;
    if (argv['limits-only']) {
      await hostLimitsStep({ raise: !!argv['raise-limits'], ask: tty && !argv['raise-limits'], required: true });
      return;
    }
    const { applyPreseed, defaultPreseed, parsePreseed } = await import('../../admin/init.js');
    let seed: Preseed;
    if (argv.preseed !== undefined) {
      const file = String(argv.preseed);
      let text: string;
      try {
        text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new TslxcError(`Cannot read preseed ${file}`, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      seed = parsePreseed(text, file === '-' ? '(stdin)' : file);
    } else if (argv.auto) {
      seed = defaultPreseed();
    } else {
      if (!tty) throw new TslxcError('admin init needs a terminal to ask questions', 'stdin is not a terminal', 'use --auto or --preseed FILE');
      seed = await ask();
    }
    if (argv.dump) {
      console.log(renderValue(seed, 'yaml'));
      return;
    }
    const r = await applyPreseed(context(), seed);
    if (r.pools.length) console.log(`Storage pool(s) created: ${r.pools.join(', ')}`);
    if (r.networks.length) console.log(`Network(s) created: ${r.networks.join(', ')}`);
    if (r.profiles.length) console.log(`Profile(s) set: ${r.profiles.join(', ')}`);
    for (const n of r.notes) console.log(`Note: ${n}`);
    const asked = argv.preseed === undefined && !argv.auto;
    await hostLimitsStep({ raise: !!argv['raise-limits'], ask: asked && tty, required: false });
  },
});

const lxcfsStop = defineCommand({
  command: 'stop',
  describe: "Stop tslxc's lxcfs when no running container has its views bound (the next start of a container starts it again)",
  positionals: {},
  run: async () => {
    const { stopUnusedLxcfs } = await import('../../host/lxcfs.js');
    console.log((await stopUnusedLxcfs(context().paths)) ? 'lxcfs stopped' : 'lxcfs is not running');
  },
});

const lxcfs = defineGroup({
  command: 'lxcfs <command>',
  describe: "tslxc's lxcfs (its state: tslxc host)",
  subcommands: [lxcfsStop],
});

export default defineGroup({
  command: 'admin <command>',
  describe: "Host administration (first-run set-up, tslxc's lxcfs)",
  subcommands: [init, lxcfs],
});
