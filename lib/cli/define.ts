import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * One definition per verb: its positionals, options, help text and handler. Both parsers read it:
 * yargs (lib/cli/adapter.ts, for help, suggestions and usage errors) and the fast path's generic
 * parser below (lib/cli/fast.ts), which runs the same handler without loading yargs. The native
 * helper's exec grammar is generated from exec's option table at build (scripts/gen-cli-header.mjs).
 * Definitions are plain data so that shell completion can walk them.
 *
 * This module stays yargs-free: the fast path bundles it.
 */

/** What a positional or an option's value names: completion offers the matching names. */
export type ArgKind =
  | 'container'
  | 'running container'
  | 'stopped container'
  | 'new container'
  | 'snapshot'
  | 'new snapshot'
  | 'image'
  | 'new image'
  | 'profile'
  | 'new profile'
  | 'network'
  | 'new network'
  | 'pool'
  | 'new pool'
  | 'storage driver'
  | 'volume'
  | 'new volume'
  | 'device'
  | 'new device'
  | 'config key'
  | 'remote'
  | 'new remote'
  | 'url'
  | 'lab member'
  | 'gateway user'
  | 'ssh key'
  | 'command'
  | 'path'
  | 'container path'
  | 'user'
  | 'key=value'
  | 'text';

export interface OptionDef {
  type: 'string' | 'boolean' | 'number';
  /** one letter: `-f` */
  short?: string;
  /** other long names, such as LXD's `--force-interactive` for `--tty` */
  aliases?: string[];
  /** repeatable (`--env A=1 --env B=2`): the value is an array; each occurrence takes one word */
  multiple?: boolean;
  default?: string | number | boolean;
  choices?: readonly string[];
  /** what a string value names, for completion */
  kind?: ArgKind;
  describe?: string;
  /** the command line must give it (`gateway user add --container`) */
  required?: boolean;
  /** options that cannot be given with this one */
  conflicts?: string[];
  /** the value may be `-`, for stdin (`admin init --preseed -`) */
  dashMeansStdin?: boolean;
}

export interface PositionalDef {
  kind: ArgKind;
  describe?: string;
  choices?: readonly string[];
  /** the value of an optional positional not given (`image export IMAGE [target]`: `.`) */
  default?: string;
}

export type Args = Record<string, unknown>;

export interface CommandDef {
  /** yargs's command string: `copy <source> <destination>`, `<names..>` (one or more), `[newname]` (optional). */
  command: string;
  aliases?: string[];
  /** false: a command for the project's own use, left out of help (network release-instance) */
  describe: string | false;
  positionals: Record<string, PositionalDef>;
  options?: Record<string, OptionDef>;
  /** The variadic positional that also takes every word after `--` (exec's and ssh's command). */
  rest?: string;
  /** Runs the command with the parsed arguments: option keys (canonical names) and positionals. */
  run(argv: Args): Promise<void>;
}

/**
 * A verb made of subcommands (`snapshot create`, `snapshot list`...), which may be groups
 * themselves (`storage volume create`). A subcommand whose command string is `$0` runs when the
 * group is given none (`gateway` alone serves; `gateway user add` manages its users).
 */
export interface GroupDef {
  /** `snapshot <command>` */
  command: string;
  aliases?: string[];
  describe: string;
  subcommands: Array<CommandDef | GroupDef>;
  /** the usage error when no subcommand is given, where yargs's own is not clear enough */
  missingCommand?: string;
}

/** Identity, for the type check and to mark a verb's one definition. */
export function defineCommand(def: CommandDef): CommandDef {
  return def;
}

export function defineGroup(def: GroupDef): GroupDef {
  return def;
}

export function isGroup(def: CommandDef | GroupDef): def is GroupDef {
  return 'subcommands' in def;
}

export interface Slot {
  name: string;
  required: boolean;
  variadic: boolean;
}

/** The positionals of a command string, in order (yargs takes `<names..>` and `<names...>` alike). */
export function slots(def: CommandDef): Slot[] {
  return [...def.command.matchAll(/([<[])([a-z-]+)(\.\.\.?)?[>\]]/g)].map((m) => ({ name: m[2]!, required: m[1] === '<', variadic: !!m[3] }));
}

/** A group's subcommands, nested groups walked, with the words that name each below the group. */
export function leaves(group: GroupDef): Array<{ words: string[]; def: CommandDef }> {
  return group.subcommands.flatMap((sub) =>
    isGroup(sub)
      ? leaves(sub).map((l) => ({ words: [verbOf(sub), ...l.words], def: l.def }))
      : [{ words: verbOf(sub) === '$0' ? [] : [verbOf(sub)], def: sub }],
  );
}

/** The verb's own word (the first of its command string). */
export function verbOf(def: CommandDef | GroupDef): string {
  return def.command.split(' ')[0]!;
}

/** An option table as node's parseArgs takes it: numbers are read as strings and checked after. */
function parseArgsOptions(table: Record<string, OptionDef>): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [key, o] of Object.entries(table)) {
    // parseArgs rejects `multiple: undefined`: set the key only where it applies.
    const base = { type: o.type === 'boolean' ? ('boolean' as const) : ('string' as const), ...(o.multiple ? { multiple: true } : {}) };
    options[key] = { ...base, ...(o.short ? { short: o.short } : {}) };
    for (const alias of o.aliases ?? []) options[alias] = base;
  }
  return options;
}

/**
 * The fast path's one parser: the arguments after the verb's words as `run` takes them, or
 * undefined where it cannot be sure of the meaning (an unknown option, --help, a value that is
 * not one of the choices, a wrong count of positionals), which yargs then decides. Semantics are
 * node's parseArgs (strict), which the yargs adapter is configured to match.
 */
export function parseCommandLine(def: CommandDef, args: string[]): Args | undefined {
  const table = def.options ?? {};
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(table), allowPositionals: true, strict: true, tokens: true });
  } catch {
    return undefined;
  }
  const out: Args = {};
  const canonical = new Map<string, string>();
  for (const [key, o] of Object.entries(table)) for (const name of [key, ...(o.aliases ?? [])]) canonical.set(name, key);
  // Walk the tokens rather than parseArgs's values: an alias and its option are one key, in order.
  const before: string[] = [];
  const after: string[] = [];
  let dashdash = false;
  for (const tok of parsed.tokens) {
    if (tok.kind === 'option-terminator') dashdash = true;
    else if (tok.kind === 'positional') (dashdash ? after : before).push(tok.value);
    else {
      const key = canonical.get(tok.name)!;
      const o = table[key]!;
      let value: unknown = o.type === 'boolean' ? true : tok.value;
      if (o.type === 'number') {
        value = Number(tok.value);
        if (tok.value === '' || !Number.isFinite(value)) return undefined;
      }
      if (o.choices && !o.choices.includes(String(value))) return undefined;
      out[key] = o.multiple ? [...((out[key] as unknown[] | undefined) ?? []), value] : value;
    }
  }
  for (const [key, o] of Object.entries(table)) {
    if (out[key] === undefined && o.required) return undefined;
    if (out[key] !== undefined && o.conflicts?.some((other) => out[other] !== undefined)) return undefined;
  }
  for (const [key, o] of Object.entries(table)) if (out[key] === undefined && o.default !== undefined) out[key] = o.default;
  let i = 0;
  for (const s of slots(def)) {
    if (s.variadic) {
      const words = before.slice(i);
      if (s.name === def.rest) words.push(...after);
      if (s.required && words.length === 0) return undefined;
      out[s.name] = words;
      i = before.length;
    } else if (i < before.length) {
      const value = before[i++]!;
      const choices = def.positionals[s.name]?.choices;
      if (choices && !choices.includes(value)) return undefined;
      out[s.name] = value;
    } else if (s.required) {
      return undefined;
    } else if (def.positionals[s.name]?.default !== undefined) {
      out[s.name] = def.positionals[s.name]!.default;
    }
  }
  // Words after `--` belong to the rest positional only.
  if (i !== before.length || (after.length && !def.rest)) return undefined;
  return out;
}
