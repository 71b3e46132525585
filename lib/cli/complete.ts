import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isGroup, slots, verbOf, type ArgKind, type CommandDef, type GroupDef } from './define.js';
import { containersDir, defaultPaths, imagesDir, RUN_FILES, type Paths } from '../state/paths.js';
import { isAlive, parseRef } from '../util/proc.js';
import { validateInstanceName } from '../util/names.js';
import { clientDir, completionCacheFile, completionRemotesFile, defaultRemote, LOCAL } from '../client/config.js';

/**
 * Shell completion. `tslxc completion bash|zsh` prints a script (commands/completion.ts) whose
 * function runs `tslxc __complete WORD... CURRENT` and offers what it prints. The grammar comes
 * from the verbs' definitions (VERBS, lib/cli/define.ts) as plain data: the build writes it to
 * completion.json (completionSpec below), so a completion loads neither yargs nor the library,
 * only this module, and reads the names from the state dirs directly.
 */

export interface OptionSpec {
  /** takes a value (the next word, or after `=`) */
  value: boolean;
  kind?: ArgKind;
  choices?: readonly string[];
}

export interface LeafSpec {
  /** every spelling (`--force`, `-f`, `--force-interactive`), each naming its option */
  options: Record<string, OptionSpec>;
  /** the long names offered for a word starting with `-` */
  offered: string[];
  slots: Array<{ kind: ArgKind; choices?: readonly string[]; variadic: boolean }>;
}

export interface GroupSpec {
  /** every word naming a subcommand, aliases included */
  sub: Record<string, Spec>;
  /** the words offered: each subcommand's own word, hidden ones left out */
  offered: string[];
  /** what runs when no subcommand is given (`gateway` alone) */
  default?: LeafSpec;
}

export type Spec = GroupSpec | LeafSpec;

const isGroupSpec = (s: Spec): s is GroupSpec => 'sub' in s;

/** Options every command takes (lib/cli/index.ts sets them on the root). */
const GLOBAL_OPTIONS: Record<string, OptionSpec> = { '--debug': { value: false }, '--help': { value: false }, '-h': { value: false } };

function leafSpec(def: CommandDef): LeafSpec {
  const options: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  const offered: string[] = [];
  for (const [key, o] of Object.entries(def.options ?? {})) {
    const spec: OptionSpec = { value: o.type !== 'boolean', ...(o.kind ? { kind: o.kind } : {}), ...(o.choices ? { choices: o.choices } : {}) };
    offered.push(`--${key}`);
    for (const name of [`--${key}`, ...(o.short ? [`-${o.short}`] : []), ...(o.aliases ?? []).map((a) => `--${a}`)]) options[name] = spec;
  }
  offered.push('--help');
  return {
    options,
    offered,
    slots: slots(def).map((s) => {
      const p = def.positionals[s.name];
      return { kind: p?.kind ?? 'text', ...(p?.choices ? { choices: p.choices } : {}), variadic: s.variadic };
    }),
  };
}

/** The grammar of every verb, as completion walks it (the build writes it to completion.json). */
export function completionSpec(verbs: Array<CommandDef | GroupDef>): GroupSpec {
  const group: GroupSpec = { sub: {}, offered: [] };
  for (const def of verbs) {
    const word = verbOf(def);
    if (word === '$0') {
      if (!isGroup(def)) group.default = leafSpec(def);
      continue;
    }
    const spec = isGroup(def) ? completionSpec(def.subcommands) : leafSpec(def);
    for (const w of [word, ...(def.aliases ?? [])]) group.sub[w] = spec;
    if (def.describe !== false) group.offered.push(word);
  }
  return group;
}

/** The kinds of name the helper's completion lists without node (native/clicomplete.c). */
const NATIVE_KINDS: ReadonlySet<ArgKind> = new Set(['container', 'running container', 'stopped container']);

/**
 * The verbs whose first argument is a container (`start`, `snapshot create`...), by kind, as
 * "WORDS<tab>KIND" lines: the build writes them to completion-first.txt for the helper, which
 * completes that first argument without node.
 */
export function nativeCompletionTable(group: GroupSpec, words: string[] = []): string {
  return Object.entries(group.sub)
    .flatMap(([word, spec]) => {
      if (isGroupSpec(spec)) return nativeCompletionTable(spec, [...words, word]);
      const first = spec.slots[0];
      return first && !first.choices && NATIVE_KINDS.has(first.kind) ? [`${[...words, word].join(' ')}\t${first.kind}\n`] : [];
    })
    .sort()
    .join('');
}

/** Where the build leaves the spec: beside this module, and beside the bundles (same depth). */
export const specFile = (moduleUrl: string) => path.join(path.dirname(fileURLToPath(moduleUrl)), '../cli/completion.json');

/** What a name belongs to: the container, profile or network given before it (a snapshot's container, a profile's device). */
export interface NameContext {
  container?: string;
  profile?: string;
  network?: string;
}

/** The names completion offers, by kind, in their context. */
export interface NameSource {
  names(kind: ArgKind, context: NameContext): string[];
  /** API servers' words for a container argument: "NAME:" of each, and REMOTE's containers as a list last saw them */
  remotes?: ClientNames;
}

/**
 * Containers of API servers, from the client's directory only (completion never waits for a
 * server): the "NAME:" words saveClientConfig writes for the native completion too, and each
 * remote's names and states as `tslxc list REMOTE:` last saw them (lib/cli/remote/list.ts).
 */
export interface ClientNames {
  words(): string[];
  /** the remote a bare name means (`remote switch`), undefined: this host */
  current(): string | undefined;
  containers(remote: string, kind: ArgKind): string[];
}

export function clientNames(dir: string): ClientNames {
  return {
    words: () => (readText(completionRemotesFile(dir)) ?? '').split('\n').filter((w) => /^[a-z0-9][a-z0-9-]*:$/.test(w)),
    current: () => {
      const r = defaultRemote(dir);
      return r === LOCAL ? undefined : r;
    },
    containers: (remote, kind) => {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(remote)) return [];
      const rows = (readText(completionCacheFile(dir, remote)) ?? '').split('\n').map((l) => l.split('\t'));
      return rows.flatMap(([word, k]) => {
        const name = word?.slice(remote.length + 1);
        if (!word?.startsWith(`${remote}:`) || !name || !isInstanceName(name)) return [];
        return kind === 'container' || k === kind ? [name] : [];
      });
    },
  };
}

const CONTAINER_KINDS: ReadonlySet<ArgKind> = new Set(['container', 'running container', 'stopped container']);

/** What to offer: words, or the shell's own file names. */
export interface Completion {
  words: string[];
  files?: boolean;
}

const FILE_KINDS: ReadonlySet<ArgKind> = new Set(['path']);

/**
 * What fits the last of `words` (the command line after `tslxc`, the word being completed last,
 * maybe empty). Walks the grammar as the parsers read it: subcommand words, options with their
 * values, positionals in order (a variadic one takes the rest), nothing after `--`.
 */
export function complete(root: GroupSpec, words: string[], source: NameSource): Completion {
  const cur = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  let spec: Spec = root;
  let i = 0;
  while (isGroupSpec(spec) && i < before.length && (!before[i]!.startsWith('-') || (spec === root && before[i] === '--debug'))) {
    if (before[i] === '--debug') {
      i++;
      continue;
    }
    const next: Spec | undefined = spec.sub[before[i]!];
    if (!next) return { words: [] };
    spec = next;
    i++;
  }
  if (isGroupSpec(spec)) {
    // Options before a subcommand belong to the group's default command (`gateway --port 2222`).
    if (spec.default && (cur.startsWith('-') || i < before.length)) return completeLeaf(spec.default, before.slice(i), cur, source);
    if (i < before.length && !spec.default) return { words: [] };
    return { words: filter(cur.startsWith('-') ? ['--help'] : spec.offered, cur) };
  }
  return completeLeaf(spec, before.slice(i), cur, source);
}

function completeLeaf(leaf: LeafSpec, before: string[], cur: string, source: NameSource): Completion {
  const positionals: string[] = [];
  let pending: OptionSpec | undefined;
  for (const w of before) {
    // Without bash-completion, bash splits `--profile=small` into three words around the `=`.
    if (pending && w === '=') continue;
    if (pending) {
      pending = undefined;
    } else if (w === '--') {
      return { words: [] };
    } else if (w.startsWith('-') && w !== '-') {
      const o = leaf.options[w];
      if (o?.value && !w.includes('=')) pending = o;
    } else {
      positionals.push(w);
    }
  }
  if (pending) return completeKind(pending.kind, pending.choices, cur, {}, source);
  if (cur.startsWith('--') && cur.includes('=')) {
    const eq = cur.indexOf('=');
    const o = leaf.options[cur.slice(0, eq)];
    if (!o?.value) return { words: [] };
    const inner = completeKind(o.kind, o.choices, cur.slice(eq + 1), {}, source);
    return { ...inner, words: inner.words.map((w) => `${cur.slice(0, eq + 1)}${w}`) };
  }
  if (cur.startsWith('-')) return { words: filter(leaf.offered, cur) };
  const slot = leaf.slots[Math.min(positionals.length, leaf.slots.length - 1)];
  if (!slot || (positionals.length >= leaf.slots.length && !slot.variadic)) return { words: [] };
  // A snapshot, device or key belongs to the container, profile or network named before it.
  const context: NameContext = {};
  leaf.slots.forEach((s, k) => {
    if (k >= positionals.length || s.variadic) return;
    if (/container$/.test(s.kind)) context.container ??= positionals[k];
    else if (s.kind === 'profile') context.profile ??= positionals[k];
    else if (s.kind === 'network') context.network ??= positionals[k];
  });
  // A variadic slot offers each name once.
  const taken = slot.variadic ? new Set(positionals.slice(leaf.slots.length - 1)) : new Set<string>();
  const out = completeKind(slot.kind, slot.choices, cur, context, source);
  return { ...out, words: out.words.filter((w) => !taken.has(w)) };
}

function completeKind(
  kind: ArgKind | undefined,
  choices: readonly string[] | undefined,
  cur: string,
  context: { container?: string },
  source: NameSource,
): Completion {
  if (choices) return { words: filter(choices, cur) };
  if (!kind) return { words: [] };
  if (FILE_KINDS.has(kind)) return { words: [], files: true };
  // `NAME/` names a snapshot of NAME where a container is taken (copy NAME/SNAP, delete NAME/SNAP).
  const slash = cur.indexOf('/');
  if (kind === 'container' && slash > 0) {
    const name = cur.slice(0, slash);
    return {
      words: filter(
        source.names('snapshot', { container: name }).map((s) => `${name}/${s}`),
        cur,
      ),
    };
  }
  if (CONTAINER_KINDS.has(kind) && source.remotes) {
    const colon = cur.indexOf(':');
    if (colon > 0) {
      const remote = cur.slice(0, colon);
      return {
        words: filter(
          remote === LOCAL ? source.names(kind, context).map((n) => `${LOCAL}:${n}`) : source.remotes.containers(remote, kind).map((n) => `${remote}:${n}`),
          cur,
        ),
      };
    }
    const current = source.remotes.current();
    return { words: filter([...(current ? source.remotes.containers(current, kind) : source.names(kind, context)), ...source.remotes.words()], cur) };
  }
  return { words: filter(source.names(kind, context), cur) };
}

const filter = (words: readonly string[], cur: string) => [...new Set(words)].filter((w) => w.startsWith(cur)).sort();

/** Entries of a dir (none when it is missing). */
function entries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function isInstanceName(name: string): boolean {
  try {
    validateInstanceName(name);
    return true;
  } catch {
    return false;
  }
}

/** The names of `NAME.yaml` files in a dir. */
const yamlNames = (dir: string) =>
  entries(dir).flatMap((e) => (e.isFile() && e.name.endsWith('.yaml') && !e.name.startsWith('.') ? [e.name.slice(0, -5)] : []));

/** The top-level keys of a flat YAML mapping (aliases.yaml, remotes.yaml), without a YAML parser. */
const topKeys = (text: string | undefined) => [...(text ?? '').matchAll(/^['"]?([A-Za-z0-9][^'":\s]*)['"]?:/gm)].map((m) => m[1]!);

/**
 * The keys directly under a top-level mapping of a YAML file as tslxc writes it (js-yaml's dump,
 * two spaces of indent): a config's `config:` keys or `devices:` names, without a YAML parser.
 */
export function sectionKeys(text: string | undefined, section: string): string[] {
  const out: string[] = [];
  let inside = false;
  for (const line of (text ?? '').split('\n')) {
    if (/^\S/.test(line)) inside = line.startsWith(`${section}:`);
    else if (inside) {
      const m = /^ {2}(?:'([^']+)'|"([^"]+)"|([^\s'"#][^:]*)):(?:\s|$)/.exec(line);
      if (m) out.push((m[1] ?? m[2] ?? m[3])!);
    }
  }
  return out;
}

/**
 * Names from the state dirs, read as the library lays them out but without loading it: what is
 * there is offered, and anything unreadable is left out (a completion never fails).
 */
export function stateNames(p: Paths, builtinProfiles: string): NameSource {
  // Valid names only, as lib/state/config.ts listNames takes them (stray entries are not containers).
  const containers = () => entries(containersDir(p)).flatMap((e) => (e.isDirectory() && isInstanceName(e.name) ? [e.name] : []));
  // Running as `tslxc list` says it: init's pid file names a live process (lib/state/runtime.ts).
  const running = (name: string) => isAlive(parseRef(readText(path.join(p.runDir, 'containers', name, RUN_FILES.initPid))));
  const profileFile = (name: string) =>
    /^[a-z0-9][a-z0-9._-]*$/i.test(name)
      ? (readText(path.join(p.stateDir, 'profiles', `${name}.yaml`)) ?? readText(path.join(builtinProfiles, `${name}.yaml`)))
      : undefined;
  // The file whose devices or keys are meant: the container's config, else the profile's, else the network's.
  const owner = (context: NameContext) =>
    context.container
      ? isInstanceName(context.container)
        ? readText(path.join(containersDir(p), context.container, 'config.yaml'))
        : undefined
      : context.profile
        ? profileFile(context.profile)
        : context.network && /^[a-z0-9][a-z0-9-]*$/.test(context.network)
          ? readText(path.join(p.stateDir, 'networks', `${context.network}.yaml`))
          : undefined;
  return {
    names(kind, context) {
      switch (kind) {
        case 'device':
          return sectionKeys(owner(context), 'devices');
        case 'config key':
          // volatile.* keys are tslxc's own bookkeeping.
          return sectionKeys(owner(context), 'config').filter((k) => !k.startsWith('volatile.'));
        case 'container':
          return containers();
        case 'running container':
          return containers().filter(running);
        case 'stopped container':
          return containers().filter((n) => !running(n));
        case 'snapshot':
          if (!context.container || !isInstanceName(context.container)) return [];
          return entries(path.join(containersDir(p), context.container, 'snapshots')).flatMap((e) =>
            e.isDirectory() && !e.name.startsWith('.') ? [e.name] : [],
          );
        case 'image':
          return [
            ...topKeys(readText(path.join(imagesDir(p), 'aliases.yaml'))),
            ...entries(imagesDir(p)).flatMap((e) => (e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name) ? [e.name.slice(0, 12)] : [])),
          ];
        case 'profile':
          return [...yamlNames(builtinProfiles), ...yamlNames(path.join(p.stateDir, 'profiles'))];
        case 'network':
          return yamlNames(path.join(p.stateDir, 'networks'));
        case 'pool':
          return ['default', ...yamlNames(path.join(p.stateDir, 'storage-pools'))];
        case 'remote': {
          const text = readText(path.join(p.stateDir, 'remotes.yaml'));
          return text === undefined ? ['images'] : topKeys(text);
        }
        default:
          return [];
      }
    },
  };
}

/**
 * `tslxc __complete WORD... CURRENT`: one candidate a line; `:files` alone asks the shell for file
 * names. Never an error: a broken completion would print into the user's command line.
 */
export function completeMain(words: string[]): void {
  let out: Completion = { words: [] };
  try {
    const spec = JSON.parse(fs.readFileSync(specFile(import.meta.url), 'utf8')) as GroupSpec;
    const source = stateNames(defaultPaths(), path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../profiles'));
    out = complete(spec, words, { ...source, names: source.names, remotes: clientNames(clientDir()) });
  } catch {
    // nothing to offer
  }
  process.stdout.write(out.files ? ':files\n' : out.words.map((w) => `${w}\n`).join(''));
}
