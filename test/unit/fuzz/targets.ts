/**
 * Fuzz targets: each turns a case index into an input (seeded: the same seed and index give the
 * same input), feeds it to a parser the way tslxc does, and reports anything but success or a
 * one-line TslxcError.
 */
import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { TslxcError } from '../../../lib/errors.js';
import { loadRecipe, builtinTemplatesDir } from '../../../lib/image/recipe.js';
import { configKeys, validateChange, validateExpanded } from '../../../lib/config/schema.js';
import { validateDevice } from '../../../lib/device/registry.js';
import { parseSyscallList } from '../../../lib/config/security.js';
import { validateAlias, validateInstanceName } from '../../../lib/util/names.js';
import { parseProfile, validateProfileName } from '../../../lib/profile/store.js';
import { validateDeviceName } from '../../../lib/config/schema.js';
import { readYaml } from '../../../lib/util/yaml.js';
import { checkEntries, cleanName } from '../../../lib/image/archive.js';
import { validateMetadata } from '../../../lib/image/lxd.js';
import { Gen } from './fuzz.js';

export interface Outcome {
  input: string;
  error?: string;
}
export interface Target {
  setup(seed: number, tmpDir: string): (index: number) => Outcome;
}

/** Calls fn; an exception other than a one-line TslxcError is the finding. */
function check(input: string, fn: () => unknown): Outcome {
  try {
    fn();
    return { input };
  } catch (err) {
    if (err instanceof TslxcError && !err.message.includes('\n') && err.message.length > 0) return { input };
    const e = err as Error;
    return {
      input,
      error: `${e?.constructor?.name ?? typeof err}: ${String(e?.stack ?? err)
        .split('\n')
        .slice(0, 4)
        .join(' | ')}`,
    };
  }
}

const HOST = { cpus: [0, 1, 2, 3], memoryBytes: 8 * 2 ** 30 };

const YAML_TOKENS = [
  '&a',
  '*a',
  '<<: *a',
  '!!binary',
  '!!str',
  '!!int',
  '!!map',
  '!!seq',
  '!!null',
  '---',
  '...',
  '? ',
  '- ',
  '{',
  '}',
  '[',
  ']',
  '|',
  '>-',
  '~',
  'null',
  'true',
  'yes',
  '0x1F',
  '0o17',
  '.inf',
  '-.nan',
  '1e400',
  '"\\u0000"',
  "'",
  '#',
  '%YAML 1.2',
  '%TAG ! tag:x:',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
];

/** A corpus entry (seed) per case, mutated; one case in five is fresh random text. */
function textCase(g: Gen, corpus: string[]): string {
  if (g.chance(0.2)) return Array.from({ length: g.int(8) }, () => `${' '.repeat(g.int(4))}${g.token()}: ${g.token()}`).join('\n');
  return g.mutate(g.pick(corpus), corpus);
}

const RECIPE_KEYS = [
  'name',
  'description',
  'os',
  'release',
  'releases',
  'source',
  'from',
  'type',
  'busybox',
  'debootstrap',
  'image',
  'variant',
  'mirror',
  'packages',
  'components',
  'init',
  'stop_signal',
  'environment',
  'files',
  'path',
  'content',
  'mode',
  'commands',
  'SIGRTMIN+3',
  'SIGUSR2',
  '/sbin/init',
  'minbase',
  'bookworm',
  '12',
  'debian/12',
];
const RECIPE_SEEDS = [
  'name: t\nsource:\n  type: busybox\n',
  'name: t/1\nfrom: debian\nfiles:\n  - path: /etc/x\n    content: "a"\n    mode: "0644"\ncommands:\n  - echo hi\n',
  'name: t\nrelease: "12"\nreleases:\n  "12": bookworm\nsource: {type: debootstrap, variant: minbase, packages: [a, b]}\ninit: [/sbin/init]\nstop_signal: SIGRTMIN+3\nenvironment: {A: b}\n',
  'base: &b {type: busybox}\nname: x\nsource: *b\n',
  'name: t\nsource: &s {type: busybox, packages: *s}\nfiles: &f [{path: /a, content: *f}]\nenvironment: {__proto__: x}\n',
];

const PROFILE_SEEDS = [
  'description: d\nconfig:\n  limits.memory: 512MiB\n  limits.cpu: "2"\ndevices:\n  eth0:\n    type: nic\n    network: tslxcbr0\n    name: eth0\n',
  'config:\n  security.syscalls.deny: bpf,kexec_load\n  security.nesting: "true"\n  environment.TZ: UTC\ndevices:\n  root:\n    type: disk\n    path: /\n    pool: default\n  data:\n    type: disk\n    source: /srv\n    path: /srv\n',
  'config: {}\ndevices: {}\n',
  'config: &a {x: *a}\ndevices: &d {d: *d, __proto__: {type: nic}}\n',
  'devices:\n  p:\n    type: proxy\n    listen: tcp:0.0.0.0:80\n    connect: tcp:127.0.0.1:80\n  gone: {type: none}\n',
];

const METADATA_SEEDS = [
  'architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  os: debian\n  release: "12"\n  description: d\ntemplates:\n  /etc/hostname:\n    when: [create, copy]\n    template: hostname.tpl\n',
  'architecture: amd64\nproperties: {}\n',
  'architecture: x\nproperties: &p {a: *p}\ntemplates: &t {/a: *t}\n',
];

export const TARGETS: Record<string, Target> = {
  /** Recipes as `image build` reads them: a YAML file through loadRecipe (YAML parse + parseRecipe). */
  recipe: {
    setup(seed, dir) {
      const corpus = [
        ...RECIPE_SEEDS,
        ...fs
          .readdirSync(builtinTemplatesDir)
          .filter((f) => f.endsWith('.yaml'))
          .map((f) => fs.readFileSync(path.join(builtinTemplatesDir, f), 'utf8')),
      ];
      const file = path.join(dir, 'recipe.yaml');
      return (i) => {
        const g = new Gen(seed * 1_000_003 + i, [...RECIPE_KEYS, ...YAML_TOKENS]);
        const text = textCase(g, corpus);
        const release = g.chance(0.1) ? g.token() : undefined;
        fs.writeFileSync(file, text);
        return check(text, () => loadRecipe(file, release === undefined ? {} : { release }));
      };
    },
  },

  /** Config keys and values as `config set` and `create -c` take them, alone and as a whole. */
  config: {
    setup(seed) {
      const keys = configKeys().map((k) => (k.key.endsWith('.') ? `${k.key}X` : k.key));
      const values = [
        '1',
        '0',
        '-1',
        '2',
        '50%',
        '0%',
        '101%',
        '512MiB',
        '1GB',
        '4kB',
        '1e3',
        '0x10',
        'true',
        'false',
        'yes',
        'hard',
        'soft',
        '25ms/100ms',
        '0-1,3',
        '3-1',
        '99999999999999999999',
        'bpf,kexec_load',
        'sethostname',
        ' ',
        '10s',
        '500ms',
        '1h',
        '-',
        '%',
        'NaN',
        'Infinity',
      ];
      return (i) => {
        const g = new Gen(seed * 1_000_003 + i, [...keys, ...values]);
        const set: Record<string, string> = {};
        for (let k = 0, n = 1 + g.int(4); k < n; k++) {
          const key = g.chance(0.8) ? g.pick(keys) + (g.chance(0.1) ? g.string(4) : '') : g.string(20);
          set[key] = g.chance(0.7) ? g.pick(values) + (g.chance(0.3) ? g.string(3) : '') : g.string(30);
        }
        const input = JSON.stringify(set);
        return check(input, () => {
          validateChange(set, g.chance(0.5) ? HOST : undefined);
          validateExpanded(set, HOST, 'c1');
        });
      };
    },
  },

  /** Names: containers, images/recipes, profiles, devices, syscall lists. */
  names: {
    setup(seed) {
      const dict = ['a', 'dev1', '-', '.', '..', '/', 'debian/12', 'x'.repeat(63), 'x'.repeat(64), '0', '123', 'A', '_', 'kexec_load', ',', ' '];
      return (i) => {
        const g = new Gen(seed * 1_000_003 + i, dict);
        const s = Array.from({ length: 1 + g.int(4) }, () => g.token()).join('');
        return check(JSON.stringify(s), () => {
          for (const f of [
            validateInstanceName,
            validateAlias,
            validateProfileName,
            validateDeviceName,
            (x: string) => parseSyscallList(x, 'security.syscalls.deny'),
          ]) {
            const r = check(s, () => f(s));
            if (r.error) throw new Error(r.error);
          }
          validateInstanceName(g.value()); // not even a string
          validateAlias(g.value());
        });
      };
    },
  },

  /** Profiles as `profile edit` and the store read them: YAML file, parseProfile, then its keys and devices. */
  profile: {
    setup(seed, dir) {
      const file = path.join(dir, 'p.yaml');
      const dict = [
        'config',
        'devices',
        'description',
        'type',
        'nic',
        'disk',
        'proxy',
        'none',
        'unix-char',
        'path',
        'source',
        'pool',
        'network',
        'name',
        'listen',
        'connect',
        'limits.memory',
        'security.nesting',
        'environment.A',
        ...YAML_TOKENS,
      ];
      return (i) => {
        const g = new Gen(seed * 1_000_003 + i, dict);
        const text = textCase(g, PROFILE_SEEDS);
        fs.writeFileSync(file, text);
        return check(text, () => {
          const p = parseProfile('p', readYaml(file), false, file);
          validateChange(p.config);
          for (const [n, d] of Object.entries(p.devices)) validateDevice(n, d);
        });
      };
    },
  },

  /** The image import checks (lib/image/archive.ts, lxd.ts): entry lists and metadata.yaml. */
  import: {
    setup(seed, dir) {
      const file = path.join(dir, 'metadata.yaml');
      const parts = ['rootfs', 'metadata.yaml', 'templates', 'dev', 'etc', 'passwd', '..', '.', '', '/', 'x', 'null'];
      const types = ['-', 'd', 'l', 'h', 'c', 'b', 'p', 's', '?'];
      return (i) => {
        const g = new Gen(seed * 1_000_003 + i, [...parts, 'architecture', 'creation_date', 'properties', 'templates', 'template', 'when', ...YAML_TOKENS]);
        if (g.chance(0.5)) {
          const name = () => Array.from({ length: 1 + g.int(4) }, () => (g.chance(0.8) ? g.pick(parts) : g.string(5))).join('/');
          const entries = Array.from({ length: g.int(8) }, () => ({
            type: g.pick(types),
            name: name(),
            link: g.chance(0.4) ? (g.chance(0.5) ? '/' : '') + name() : undefined,
          }));
          const roots = g.chance(0.5) ? ['metadata.yaml', 'rootfs', 'templates'] : undefined;
          const rootfsPrefix = g.pick(['rootfs', '', null, undefined]);
          return check(JSON.stringify(entries), () => {
            checkEntries(entries, 'a.tar', { roots, rootfsPrefix });
            cleanName(name(), 'a.tar');
          });
        }
        const text = textCase(g, METADATA_SEEDS);
        fs.writeFileSync(file, text);
        return check(text, () => {
          // As lxd.ts's readMetadataFile: a YAML error becomes a one-line TslxcError there.
          let doc: unknown;
          try {
            doc = yaml.load(fs.readFileSync(file, 'utf8'), { schema: yaml.CORE_SCHEMA });
          } catch (err) {
            if (err instanceof yaml.YAMLException) return;
            throw err;
          }
          validateMetadata(doc, 'a.tar');
        });
      };
    },
  },
};
