import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseCommandLine, verbOf, type CommandDef } from '../../../lib/cli/define.js';
import { FAST_COMMANDS, OWN_BUNDLES } from '../../../lib/cli/fast.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../../..');

const run = async () => {};
const copyLike: CommandDef = {
  command: 'copy <source> <destination>',
  describe: '',
  positionals: { source: { kind: 'container' }, destination: { kind: 'new container' } },
  options: { storage: { type: 'string', short: 's', describe: '' }, 'instance-only': { type: 'boolean', describe: '' } },
  run,
};
const moveLike: CommandDef = {
  command: 'move <name> [newname]',
  describe: '',
  positionals: { name: { kind: 'container' }, newname: { kind: 'new container' } },
  run,
};
const deleteLike: CommandDef = {
  command: 'delete <names..>',
  describe: '',
  positionals: { names: { kind: 'container' } },
  options: { force: { type: 'boolean', short: 'f', describe: '' } },
  run,
};

test('the fast parser takes exactly the grammar of the command', (t) => {
  t.deepEqual(parseCommandLine(copyLike, ['a', 'b']), { source: 'a', destination: 'b' });
  t.deepEqual(parseCommandLine(copyLike, ['a', '-s', 'p', 'b', '--instance-only']), { source: 'a', destination: 'b', storage: 'p', 'instance-only': true });
  t.deepEqual(parseCommandLine(copyLike, ['--storage=p', 'a', 'b']), { source: 'a', destination: 'b', storage: 'p' });
  t.deepEqual(parseCommandLine(moveLike, ['a']), { name: 'a' });
  t.deepEqual(parseCommandLine(moveLike, ['a', 'b']), { name: 'a', newname: 'b' });
  t.deepEqual(parseCommandLine(deleteLike, ['a', 'b', '-f']), { names: ['a', 'b'], force: true });
});

test('the fast parser leaves to yargs what it cannot be sure of', (t) => {
  for (const args of [
    [],
    ['a'],
    ['a', 'b', 'c'],
    ['a', 'b', '--bogus'],
    ['a', 'b', '--help'],
    ['-h'],
    ['a', 'b', '--debug'],
    ['a', '-s'],
    ['a', 'b', '--instance-only=yes'],
    ['a', '--', 'b'],
  ]) {
    t.is(parseCommandLine(copyLike, args), undefined, args.join(' '));
  }
  t.is(parseCommandLine(moveLike, ['a', 'b', 'c']), undefined);
  t.is(parseCommandLine(deleteLike, []), undefined);
  t.is(parseCommandLine(deleteLike, ['-f']), undefined);
});

test('the fast path names every verb by its word and each of its aliases, and no other', async (t) => {
  for (const [words, load] of Object.entries(FAST_COMMANDS)) {
    const c = await load();
    const verb = words.split(' ').at(-1);
    const own = verbOf(c);
    t.true(verb === own || (c.aliases ?? []).includes(verb!), `${words} -> ${c.command}`);
    for (const alias of [own, ...(c.aliases ?? [])]) {
      t.truthy(FAST_COMMANDS[[...words.split(' ').slice(0, -1), alias].join(' ')], `${words}: ${alias} is missing`);
    }
  }
});

// The point of the fast path: the command runs and fails properly without yargs ever being loaded.
test('fast commands run without loading yargs; what they cannot parse goes to yargs', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lean-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(
    path.join(dir, 'hooks.mjs'),
    "export async function resolve(spec, ctx, next) {\n  if (spec === 'yargs' || spec.startsWith('yargs/')) throw new Error('yargs was loaded');\n  return next(spec, ctx);\n}\n",
  );
  fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const fast = path.join(dist, 'lib', 'cli', 'fast.js');
  fs.writeFileSync(
    path.join(dir, 'run.mjs'),
    `import { tryFastPath } from ${JSON.stringify(fast)};\nconsole.log('taken', await tryFastPath(process.argv.slice(2)));\n`,
  );
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), path.join(dir, 'run.mjs'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, TSLXC_DIR: path.join(dir, 'state'), TSLXC_RUN_DIR: path.join(dir, 'run') },
    });
  const taken = [
    ['copy', 'nope', 'x'],
    ['cp', 'nope', 'x', '-s', 'p'],
    ['snapshot', 'restore', 'nope', 's1'],
    ['rm', 'nope', '-f'],
    ['move', 'nope', 'x'],
    ['mv', 'nope', 'x', '--storage', 'p'],
    ['stop', 'nope', '-f'],
    ['stop', 'nope', '--force', '--timeout', '5'],
    ['start', 'nope'],
    ['exec', 'nope', '--', 'true'],
  ];
  for (const args of taken) {
    const r = run(...args);
    t.is(r.stdout.trim(), 'taken true', `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^Error: Container "nope" not found.*\n$/, args.join(' '));
  }
  for (const args of [
    ['copy', 'nope'],
    ['snapshot', 'restore', 'nope'],
    ['rm', '--help'],
    ['snapshot', 'bogus', 'nope'],
    ['stop', 'nope', '--timeout', 'soon'],
    ['list', '-f', 'xml'],
    ['constructor'],
    ['snapshot', 'toString'],
    [],
  ]) {
    const r = run(...args);
    t.is(r.stdout.trim(), 'taken false', args.join(' '));
    t.is(r.stderr, '', args.join(' '));
  }
});

// The verbs a user waits on load one file each (lib/cli/fast.ts's OWN_BUNDLES): every module node
// loads is a resolve, a read, a compile and a link, which a start or a create pays on top of its work.
test('a verb bundled on its own loads that one file, under its word and its aliases', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-verbs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'loaded');
  fs.writeFileSync(
    path.join(dir, 'hooks.mjs'),
    `import fs from 'node:fs';\nexport async function resolve(spec, ctx, next) {\n  const r = await next(spec, ctx);\n  if (r.url.startsWith('file:')) fs.appendFileSync(${JSON.stringify(log)}, r.url + '\\n');\n  return r;\n}\n`,
  );
  fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const bin = path.resolve(dist, '..', 'bin', 'tslxc.js');
  let extraEnv: NodeJS.ProcessEnv = {};
  const run = (...args: string[]) => {
    fs.rmSync(log, { force: true });
    const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), bin, ...args], {
      encoding: 'utf8',
      env: { ...process.env, TSLXC_DIR: path.join(dir, 'state'), TSLXC_RUN_DIR: path.join(dir, 'run'), ...extraEnv },
    });
    const loaded = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
    return { ...r, loaded: loaded.map((u) => path.relative(dist, fileURLToPath(u))).filter((f) => !f.startsWith('..')) };
  };
  const words: string[] = [];
  for (const name of OWN_BUNDLES) {
    const def = (await import(`../../../lib/cli/commands/${name}.js`)).default as CommandDef;
    t.truthy(FAST_COMMANDS[verbOf(def)], `${name} is on the fast path`);
    words.push(verbOf(def), ...(def.aliases ?? []));
  }
  t.true(words.includes('start') && words.includes('init'));
  const lines: Record<string, string[]> = { exec: ['nope', '--', 'true'], launch: ['nope', 'x'], create: ['nope', 'x'], init: ['nope', 'x'] };
  for (const word of words) {
    const r = run(word, ...(lines[word] ?? ['nope']));
    t.deepEqual(
      r.loaded.filter((f) => !f.startsWith(`lib${path.sep}verbs${path.sep}`)),
      [],
      `${word}: ${r.loaded.join(' ')}`,
    );
    t.true(r.loaded.includes(path.join('lib', 'verbs', `${word}.js`)), `${word}: ${r.loaded.join(' ')}`);
    if (word === 'list' || word === 'ls') t.is(r.status, 0, `${word}: ${r.stderr}`);
    else t.regex(r.stderr, /^Error: .*"nope".*\n$/, word);
  }
  // A remote's exec: exec's file, then the client's (scripts/bundle.mjs), nothing of the local exec.
  const conf = path.join(dir, 'client');
  fs.mkdirSync(conf);
  fs.writeFileSync(path.join(conf, 'remotes.json'), JSON.stringify({ remotes: { r: { addr: 'https://127.0.0.1:1', protocol: 'lxd', auth_type: 'tls' } } }));
  extraEnv = { TSLXC_CONF: conf };
  const remote = run('exec', 'r:nope', '--', 'true');
  t.deepEqual(remote.loaded, [path.join('lib', 'verbs', 'exec.js'), path.join('lib', 'verbs', 'exec-remote.js')]);
  t.regex(remote.stderr, /^Error: Remote "r" has no pinned certificate/);
  extraEnv = {};
  // What its parser leaves goes to yargs, as from the fast path.
  const r = run('list', '-f', 'xml');
  t.not(r.status, 0);
  t.true(r.loaded.some((f) => f.startsWith(`lib${path.sep}full${path.sep}`)));
});
