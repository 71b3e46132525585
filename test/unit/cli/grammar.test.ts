import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import yargs from 'yargs';
import { isGroup, leaves, parseCommandLine, slots, verbOf, type Args, type CommandDef, type GroupDef } from '../../../lib/cli/define.js';
import { yargsCommand } from '../../../lib/cli/adapter.js';
import { FAST_COMMANDS } from '../../../lib/cli/fast.js';
import { VERBS } from '../../../lib/cli/index.js';

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
    // The verb's group: its default export (a module may export its subgroups too).
    const group = mod.default && typeof mod.default === 'object' && isGroup(mod.default as CommandDef | GroupDef) ? (mod.default as GroupDef) : undefined;
    const inGroup = new Set<unknown>();
    const walk = (g: GroupDef) => {
      for (const sub of g.subcommands) {
        inGroup.add(sub);
        if (isGroup(sub)) walk(sub);
      }
    };
    if (group) {
      walk(group);
      for (const l of leaves(group)) out.push({ words: [verbOf(group), ...l.words], def: l.def });
    }
    for (const v of Object.values(mod)) {
      if (typeof v === 'object' && v !== null && 'run' in v && 'positionals' in v && !inGroup.has(v))
        out.push({ words: [verbOf(v as CommandDef)], def: v as CommandDef });
    }
  }
  return out;
}

/** What yargs (as the full CLI sets it up) hands the verb's handler, or an error message. */
async function viaYargs(verb: Verb, args: string[]): Promise<Args | string> {
  let got: Args | undefined;
  const def: CommandDef = { ...verb.def, run: async (a) => void (got = a) };
  // The words above the command, as groups around it (a `$0` command is its group's default).
  const own = verbOf(def) === '$0' ? verb.words.length : verb.words.length - 1;
  const nested = verb.words
    .slice(0, own)
    .reduceRight<CommandDef | GroupDef>(
      (inner, word) => ({ command: verbOf(inner) === '$0' ? word : `${word} <command>`, describe: '', subcommands: [inner] }),
      def,
    );
  const module = yargsCommand(nested);
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
const wordFor = (def: CommandDef, name: string) => def.positionals[name]?.choices?.at(-1) ?? name;
const optionWords = (key: string, o: NonNullable<CommandDef['options']>[string]) => (o.type === 'boolean' ? [`--${key}`] : [`--${key}`, valueFor(key, o)]);

/** The least a command line gives: its required positionals, then its required options. */
function basis(def: CommandDef): { positionals: string[]; options: string[] } {
  const positionals: string[] = [];
  for (const s of slots(def)) if (s.required) positionals.push(...(s.variadic ? [`${s.name}1`, `${s.name}2`] : [wordFor(def, s.name)]));
  const options = Object.entries(def.options ?? {})
    .filter(([, o]) => o.required)
    .flatMap(([key, o]) => optionWords(key, o));
  return { positionals, options };
}

/** Command lines the fast parser must take: every option in each of its spellings and places. */
function samples(def: CommandDef): string[][] {
  const least = basis(def);
  const pos = [...least.positionals, ...least.options];
  const all = [
    pos,
    [
      ...pos,
      ...slots(def)
        .filter((s) => !s.required)
        .flatMap((s) => (s.variadic ? [`${s.name}1`, `${s.name}2`] : [wordFor(def, s.name)])),
    ],
  ];
  if (def.rest) all.push([...pos, '--', 'cmd', '-x', '--long', '--help']);
  for (const [key, o] of Object.entries(def.options ?? {})) {
    const spellings = [`--${key}`, ...(o.short ? [`-${o.short}`] : []), ...(o.aliases ?? []).map((a) => `--${a}`)];
    for (const flag of spellings) {
      const words = o.type === 'boolean' ? [flag] : [flag, valueFor(key, o)];
      all.push([...words, ...pos], [...pos, ...words]);
      if (least.positionals.length > 1) all.push([least.positionals[0]!, ...words, ...least.positionals.slice(1), ...least.options]);
      if (o.type !== 'boolean' && flag.startsWith('--')) all.push([...pos, `${flag}=${valueFor(key, o)}`]);
      if (o.dashMeansStdin) all.push([...pos, flag, '-']);
      if (o.multiple) all.push([...words, ...pos, ...words.slice(0, 1), 'second']);
      // Said twice, a single option keeps its last value.
      else all.push([...pos, ...words, ...(o.type === 'boolean' ? words : [flag, o.choices ? o.choices[0]! : `${valueFor(key, o)}2`])]);
    }
  }
  return all;
}

/** Command lines the fast parser must leave to yargs. */
function refusals(def: CommandDef): string[][] {
  const least = basis(def);
  const pos = [...least.positionals, ...least.options];
  const out = [
    [...pos, '--bogus'],
    [...pos, '--help'],
    ['-h', ...pos],
    [...pos, '--debug'],
  ];
  // Without its last required positional (both words of a variadic one).
  const lastRequired = slots(def)
    .filter((s) => s.required)
    .at(-1);
  if (lastRequired) out.push([...least.positionals.slice(0, lastRequired.variadic ? -2 : -1), ...least.options]);
  if (!slots(def).some((s) => s.variadic)) out.push([...slots(def).map((s) => wordFor(def, s.name)), ...least.options, 'extra']);
  for (const s of slots(def)) if (def.positionals[s.name]?.choices) out.push([...pos.map((w) => (w === wordFor(def, s.name) ? 'not-a-choice' : w))]);
  for (const [key, o] of Object.entries(def.options ?? {})) {
    if (o.type !== 'boolean') out.push([...pos, `--${key}`]);
    if (o.choices) out.push([...pos, `--${key}`, 'not-a-choice']);
    if (o.type === 'number') out.push([...pos, `--${key}`, 'soon']);
    if (o.required)
      out.push([
        ...least.positionals,
        ...Object.entries(def.options ?? {})
          .filter(([k, x]) => x.required && k !== key)
          .flatMap(([k, x]) => optionWords(k, x)),
      ]);
    for (const other of o.conflicts ?? []) out.push([...pos, ...optionWords(key, o), ...optionWords(other, def.options![other]!)]);
  }
  return out;
}

// Verbs off the fast path (config, network, image list...) are read by yargs alone; a group on it
// is there whole, except image, of which only import is (a copy with checks, where yargs's start
// counts; the rest of image stays with yargs).
test('every definition of a verb on the fast path is there under its words and aliases', async (t) => {
  const fastVerbs = new Set(Object.keys(FAST_COMMANDS).map((words) => words.split(' ')[0]));
  fastVerbs.delete('image');
  const fastLeaves = (await definitions()).filter((v) => v.words.join(' ') === 'image import');
  t.is(fastLeaves.length, 1);
  for (const verb of [...(await definitions()).filter((v) => fastVerbs.has(v.words[0])), ...fastLeaves]) {
    for (const alias of [verbOf(verb.def), ...(verb.def.aliases ?? [])]) {
      const words = [...verb.words.slice(0, -1), alias].join(' ');
      t.true(Object.hasOwn(FAST_COMMANDS, words), words);
      if (Object.hasOwn(FAST_COMMANDS, words)) t.is(await FAST_COMMANDS[words]!(), verb.def, words);
    }
  }
});

test('every verb of the CLI is a definition these tests walk, subcommands of subcommands included', async (t) => {
  const walked = new Set((await definitions()).map((v) => v.def));
  const all = VERBS.flatMap((v) => (isGroup(v) ? leaves(v).map((l) => ({ words: [verbOf(v), ...l.words], def: l.def })) : [{ words: [verbOf(v)], def: v }]));
  t.true(all.length >= 120);
  for (const { words, def } of all) t.true(walked.has(def), words.join(' '));
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
  t.true(verbs.length >= 120);
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

test('a usage error names what was wrong and the help of the command that was meant', async (t) => {
  const { usageLine } = await import('../../../lib/cli/index.js');
  t.is(usageLine('Did you mean launch?', ['lauch', 'x']), 'unknown command "lauch": did you mean "launch"? (see "tslxc --help")');
  t.is(usageLine('Did you mean list?', ['network', 'lst']), 'unknown command "network lst": did you mean "network list"? (see "tslxc network --help")');
  t.is(
    usageLine('Did you mean create?', ['--debug', 'storage', 'volume', 'crate', 'p', 'v']),
    'unknown command "storage volume crate": did you mean "storage volume create"? (see "tslxc storage volume --help")',
  );
  t.is(usageLine('Unknown command: zzzz', ['zzzz']), 'unknown command "zzzz" (see "tslxc --help")');
  t.is(usageLine('Unknown arguments: bogus, zz', ['list', '--bogus', '--zz=3']), 'unknown options "--bogus", "--zz" (see "tslxc list --help")');
  t.is(usageLine('Unknown command: b', ['list', 'a', 'b']), 'unexpected argument "b" (see "tslxc list --help")');
  t.is(
    usageLine('Not enough non-option arguments: got 0, need at least 1', ['start']),
    'Not enough non-option arguments: got 0, need at least 1 (see "tslxc start --help")',
  );
});
