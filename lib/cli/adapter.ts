import type { Argv, CommandModule, Options } from 'yargs';
import { isGroup, slots, type Args, type CommandDef, type GroupDef } from './define.js';

/**
 * A verb's definition (lib/cli/define.ts) as a yargs module: yargs gives it help, suggestions and
 * usage errors. yargs is configured for this command to read a command line as the fast path's
 * parser does (node's parseArgs): `--no-tty` is the option no-tty, not tty negated; a repeatable
 * option takes one word per occurrence; a repeated single option keeps its last value. The handler
 * gets the same keys as from the fast parser (a unit test compares the two over every definition).
 */
export function yargsCommand(def: CommandDef | GroupDef): CommandModule {
  if (isGroup(def)) {
    // A group with a `$0` subcommand runs it when given none: no subcommand is demanded.
    const hasDefault = def.subcommands.some((sub) => sub.command.startsWith('$0'));
    return {
      command: def.command,
      ...(def.aliases ? { aliases: def.aliases } : {}),
      describe: def.describe,
      builder: (y: Argv) => {
        const out = def.subcommands.reduce((acc, sub) => acc.command(yargsCommand(sub)), y);
        if (hasDefault) return out;
        return def.missingCommand ? out.demandCommand(1, def.missingCommand) : out.demandCommand(1);
      },
      handler: () => {},
    };
  }
  return {
    command: def.command,
    ...(def.aliases ? { aliases: def.aliases } : {}),
    describe: def.describe,
    builder: (y: Argv) => {
      // `--no-X` stays the option no-X where the verb defines one (exec's and ssh's no-tty).
      const negation = !Object.keys(def.options ?? {}).some((k) => k.startsWith('no-'));
      let out = y.parserConfiguration({ 'populate--': true, 'boolean-negation': negation, 'greedy-arrays': false });
      for (const s of slots(def)) {
        const p = def.positionals[s.name];
        out = out.positional(s.name, {
          type: 'string',
          ...(p?.describe ? { describe: p.describe } : {}),
          ...(p?.choices ? { choices: [...p.choices] } : {}),
          ...(p?.default !== undefined ? { default: p.default } : {}),
          ...(s.variadic ? { array: true } : {}),
          ...(s.required ? { demandOption: true } : {}),
        });
      }
      for (const [key, o] of Object.entries(def.options ?? {})) {
        const alias = [...(o.short ? [o.short] : []), ...(o.aliases ?? [])];
        // With choices, the choices are the type (as withFormat has it for the other verbs' --format).
        const opt: Options = o.choices ? { describe: o.describe, choices: [...o.choices] } : { type: o.type, describe: o.describe };
        if (alias.length) opt.alias = alias;
        if (o.multiple) opt.array = true;
        if (o.default !== undefined) opt.default = o.default;
        if (o.required) opt.demandOption = true;
        // yargs reads `--preseed -` as an empty value unless told the next word is the value.
        if (o.dashMeansStdin) opt.nargs = 1;
        out = out.option(key, opt);
      }
      for (const [key, o] of Object.entries(def.options ?? {})) for (const other of o.conflicts ?? []) out = out.conflicts(key, other);
      return out;
    },
    handler: (argv) => def.run(argsFromYargs(def, argv)),
  };
}

/** yargs's argv as the definition's handler takes it (what the fast parser gives). */
export function argsFromYargs(def: CommandDef, argv: Record<string, unknown>): Args {
  const out: Args = {};
  for (const [key, o] of Object.entries(def.options ?? {})) {
    let v = argv[key];
    if (v === undefined) continue;
    if (!o.multiple && Array.isArray(v)) v = v.at(-1);
    out[key] = v;
  }
  for (const s of slots(def)) {
    let v = argv[s.name];
    if (s.variadic) v = ((v as unknown[] | undefined) ?? []).map(String);
    if (s.name === def.rest) v = (v as string[]).concat(((argv['--'] as unknown[] | undefined) ?? []).map(String));
    if (v !== undefined) out[s.name] = v;
  }
  return out;
}
