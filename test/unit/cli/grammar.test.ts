import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import yargs from 'yargs';
import { isGroup, parseCommandLine, slots, verbOf, type Args, type CommandDef, type GroupDef } from '../../../lib/cli/define.js';
import { yargsCommand } from '../../../lib/cli/adapter.js';
import { FAST_COMMANDS } from '../../../lib/cli/fast.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const commandsDir = path.resolve(here, '../../../lib/cli/commands');

interface Verb {
  words: string[];
  def: CommandDef;
}

/** Every definition the command modules export, with the words that name it. */
async function definitions(): Promise<Verb[]> {
  const out: Verb[] = [];
  for (const file of fs.readdirSync(commandsDir).filter((f) => f.endsWith('.js'))) {
    const mod = (await import(path.join(commandsDir, file))) as Record<string, unknown>;
    const groups = Object.values(mod).filter((v): v is GroupDef => typeof v === 'object' && v !== null && 'subcommands' in v);
    const inGroup = new Set(groups.flatMap((g) => g.subcommands));
    for (const g of groups) for (const def of g.subcommands) out.push({ words: [verbOf(g), verbOf(def)], def });
    for (const v of Object.values(mod)) {
      if (typeof v === 'object' && v !== null && 'run' in v && 'positionals' in v && !inGroup.has(v as CommandDef))
        out.push({ words: [verbOf(v as CommandDef)], def: v as CommandDef });
    }
  }
  return out;
}

/** What yargs (as the full CLI sets it up) hands the verb's handler, or an error message. */
async function viaYargs(verb: Verb, args: string[]): Promise<Args | string> {
  let got: Args | undefined;
  const def: CommandDef = { ...verb.def, run: async (a) => void (got = a) };
  const module = verb.words.length === 2 ? yargsCommand({ command: `${verb.words[0]} <command>`, describe: '', subcommands: [def] }) : yargsCommand(def);
  try {
    await yargs([...verb.words, ...args])
      .command(module)
      .option('debug', { type: 'boolean', global: true })
      .strictCommands()
      .strictOptions()
      .parserConfiguration({ 'populate--': true })
      .version(false)
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
  return got ?? 'error: handler not run';
}

const valueFor = (key: string, o: NonNullable<CommandDef['options']>[string]) => (o.choices ? o.choices.at(-1)! : o.type === 'number' ? '7' : `v-${key}`);

/** Command lines the fast parser must take: every option in each of its spellings and places. */
function samples(def: CommandDef): string[][] {
  const pos: string[] = [];
  for (const s of slots(def)) if (s.required) pos.push(...(s.variadic ? [`${s.name}1`, `${s.name}2`] : [s.name]));
  const all = [
    pos,
    [
      ...pos,
      ...slots(def)
        .filter((s) => !s.required)
        .flatMap((s) => (s.variadic ? [`${s.name}1`, `${s.name}2`] : [s.name])),
    ],
  ];
  if (def.rest) all.push([...pos, '--', 'cmd', '-x', '--long', '--help']);
  for (const [key, o] of Object.entries(def.options ?? {})) {
    const spellings = [`--${key}`, ...(o.short ? [`-${o.short}`] : []), ...(o.aliases ?? []).map((a) => `--${a}`)];
    for (const flag of spellings) {
      const words = o.type === 'boolean' ? [flag] : [flag, valueFor(key, o)];
      all.push([...words, ...pos], [...pos, ...words]);
      if (pos.length > 1) all.push([pos[0]!, ...words, ...pos.slice(1)]);
      if (o.type !== 'boolean' && flag.startsWith('--')) all.push([...pos, `${flag}=${valueFor(key, o)}`]);
      if (o.multiple) all.push([...words, ...pos, ...words.slice(0, 1), 'second']);
      // Said twice, a single option keeps its last value.
      else all.push([...pos, ...words, ...(o.type === 'boolean' ? words : [flag, o.choices ? o.choices[0]! : `${valueFor(key, o)}2`])]);
    }
  }
  return all;
}

/** Command lines the fast parser must leave to yargs. */
function refusals(def: CommandDef): string[][] {
  const pos = slots(def)
    .filter((s) => s.required)
    .map((s) => s.name);
  const out = [
    [...pos, '--bogus'],
    [...pos, '--help'],
    ['-h', ...pos],
    [...pos, '--debug'],
  ];
  if (pos.length) out.push(pos.slice(1));
  if (!slots(def).some((s) => s.variadic)) out.push([...slots(def).map((s) => s.name), 'extra']);
  for (const [key, o] of Object.entries(def.options ?? {})) {
    if (o.type !== 'boolean') out.push([...pos, `--${key}`]);
    if (o.choices) out.push([...pos, `--${key}`, 'not-a-choice']);
    if (o.type === 'number') out.push([...pos, `--${key}`, 'soon']);
  }
  return out;
}

test('every definition is on the fast path under its words and aliases', async (t) => {
  for (const verb of await definitions()) {
    for (const alias of [verbOf(verb.def), ...(verb.def.aliases ?? [])]) {
      const words = [...verb.words.slice(0, -1), alias].join(' ');
      t.true(Object.hasOwn(FAST_COMMANDS, words), words);
      if (Object.hasOwn(FAST_COMMANDS, words)) t.is(await FAST_COMMANDS[words]!(), verb.def, words);
    }
  }
});

test('no definition takes the words the CLI keeps for itself (--help, -h, --debug)', async (t) => {
  for (const { words, def } of await definitions()) {
    for (const [key, o] of Object.entries(def.options ?? {}))
      t.false(
        ['help', 'debug'].includes(key) || o.short === 'h' || (o.aliases ?? []).some((a) => ['help', 'debug'].includes(a)),
        `${words.join(' ')} --${key}`,
      );
  }
});

// One grammar: where the fast parser takes a command line, yargs hands the handler the same thing.
test('for every verb, the fast parser and yargs read each option the same way', async (t) => {
  const verbs = await definitions();
  t.true(verbs.length >= 20);
  for (const verb of verbs) {
    for (const args of samples(verb.def)) {
      const line = [...verb.words, ...args].join(' ');
      const fast = parseCommandLine(verb.def, args);
      t.truthy(fast, `fast path refuses: ${line}`);
      t.deepEqual(await viaYargs(verb, args), fast, line);
    }
    for (const args of refusals(verb.def)) t.is(parseCommandLine(verb.def, args), undefined, `fast path takes: ${[...verb.words, ...args].join(' ')}`);
  }
});

test('groups and definitions are plain data a completer can walk', async (t) => {
  for (const { def } of await definitions()) {
    for (const s of slots(def)) t.truthy(def.positionals[s.name]?.kind, `${def.command}: ${s.name} has no kind`);
    t.false(isGroup(def));
  }
});
