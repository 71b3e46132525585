import type { Argv, CommandModule } from 'yargs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * A command whose whole grammar is positionals and a few plain options (copy, move, rename,
 * delete, snapshot create|restore|delete|rename). One definition serves both parsers: yargs (with
 * help, suggestions and usage errors) builds its module from it, and the fast path (lib/cli/fast.ts)
 * parses exactly the same grammar with node's parseArgs and runs the same `run`, without loading
 * yargs, whose loading would be a large share of each of these short commands.
 *
 * A command line the lean parser does not take exactly (a wrong count of positionals, an unknown
 * option, --help) is left to yargs, which gives the proper message.
 */
export interface LeanOption {
  type: 'string' | 'boolean';
  short?: string;
  describe: string;
}

export interface LeanCommand {
  /** yargs's command string: `copy <source> <destination>`, `<names..>`, `[newname]`. */
  command: string;
  aliases?: string[];
  describe: string;
  positionals: Record<string, string>;
  options?: Record<string, LeanOption>;
  run(argv: Record<string, unknown>): Promise<void>;
}

interface Slot {
  name: string;
  required: boolean;
  variadic: boolean;
}

function slots(command: string): Slot[] {
  return [...command.matchAll(/([<[])([a-z-]+)(\.\.)?[>\]]/g)].map((m) => ({ name: m[2], required: m[1] === '<', variadic: !!m[3] }));
}

/** The yargs module of a lean command. */
export function yargsCommand(c: LeanCommand): CommandModule {
  return {
    command: c.command,
    ...(c.aliases ? { aliases: c.aliases } : {}),
    describe: c.describe,
    builder: (y: Argv) => {
      let out = y;
      for (const s of slots(c.command)) {
        out = out.positional(s.name, { type: 'string', describe: c.positionals[s.name], ...(s.variadic ? { array: true } : {}), ...(s.required ? { demandOption: true } : {}) });
      }
      for (const [key, o] of Object.entries(c.options ?? {})) out = out.option(key, { type: o.type, describe: o.describe, ...(o.short ? { alias: o.short } : {}) });
      return out;
    },
    handler: (argv) => c.run(argv),
  };
}

/**
 * The arguments after the command's words as `run` takes them, or undefined where the lean
 * parser cannot be sure of the meaning (yargs then decides).
 */
export function leanArgs(c: LeanCommand, args: string[]): Record<string, unknown> | undefined {
  if (args.some((a) => a === '--help' || a === '-h' || a === '--debug')) return undefined;
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(c.options ?? {}), allowPositionals: true, strict: true });
  } catch {
    return undefined;
  }
  const pos = parsed.positionals;
  const out: Record<string, unknown> = { ...parsed.values };
  let i = 0;
  for (const s of slots(c.command)) {
    if (s.variadic) {
      if (s.required && i >= pos.length) return undefined;
      out[s.name] = pos.slice(i);
      i = pos.length;
    } else if (i < pos.length) {
      out[s.name] = pos[i++];
    } else if (s.required) {
      return undefined;
    }
  }
  return i === pos.length ? out : undefined;
}

/** An option table shared with yargs (cli/options/) as node's parseArgs takes it. */
export function parseArgsOptions(table: Record<string, { type: 'boolean' | 'string'; short?: string; aliases?: string[]; multiple?: boolean }>): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [key, o] of Object.entries(table)) {
    // parseArgs rejects `multiple: undefined`: set the key only where it applies.
    const base = { type: o.type, ...(o.multiple ? { multiple: true } : {}) };
    options[key] = { ...base, ...(o.short ? { short: o.short } : {}) };
    for (const alias of o.aliases ?? []) options[alias] = base;
  }
  return options;
}
