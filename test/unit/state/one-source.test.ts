import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { helperPath } from '../../../lib/state/helper.js';
import { startPlanFile } from '../../../lib/instance/plan.js';
import { liveness } from '../../../lib/state/runtime.js';
import { containerConfigFile, containerRunFile, defaultPaths, RUN_FILES, type RunFile } from '../../../lib/state/paths.js';
import { isInstanceName, validateInstanceName } from '../../../lib/util/names.js';
import { parseRef, processStartTime } from '../../../lib/util/proc.js';

// The rules the helper applies itself (native/layout.c) and lib/ applies too come from one
// definition, lib/state/layout.json. These tests feed the same inputs to both sides (the C side
// through `tslxc-helper selftest`) and want the same answers.

function helper(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string } {
  const base = { ...process.env };
  for (const v of ['TSLXC_DIR', 'TSLXC_RUN_DIR']) delete base[v];
  const r = spawnSync(helperPath(), ['selftest', ...args], { env: { ...base, ...env }, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout };
}

const NAMES = [
  // valid
  'dev1',
  'a',
  'z',
  'web-01',
  'a-b-c',
  '0a',
  'a0',
  '9-9',
  'x'.repeat(63),
  `a${'0'.repeat(62)}`,
  // invalid
  '',
  '.',
  '..',
  '-',
  '-x',
  'x-',
  '--',
  'x'.repeat(64),
  `a${'0'.repeat(63)}`,
  '0',
  '123',
  '0'.repeat(63),
  'Dev1',
  'A',
  'a_b',
  'a.b',
  'a/b',
  '/',
  '../etc',
  'a b',
  ' a',
  'a ',
  'a\tb',
  'a\nb',
  'a\n',
  'a\x01',
  'a\x7f',
  'é',
  'dév1',
  '日本',
  'a😀',
  'ａ',
  'a\\0',
  'a%00',
  'ı',
  'K', // the last two: non-ASCII that lower/upper-cases to ASCII
];

/** The helper's verdict on each name, in order. */
function helperNames(names: string[]): boolean[] {
  const c = helper(['name', ...names]);
  const lines = c.out.split('\n').slice(0, -1);
  if (c.code !== 0 || lines.length !== names.length) throw new Error(`selftest name: exit ${c.code}, ${lines.length} lines for ${names.length} names`);
  return lines.map((l) => l === 'valid');
}

test('the helper and validateInstanceName accept the same container names', (t) => {
  const c = helperNames(NAMES);
  NAMES.forEach((name, i) => {
    const ts = isInstanceName(name);
    t.is(c[i], ts, JSON.stringify(name));
    if (ts) t.is(validateInstanceName(name), name);
    else t.throws(() => validateInstanceName(name), { message: /^Invalid container name/ }, JSON.stringify(name));
  });
});

test('the helper and validateInstanceName agree on random names near the rule', (t) => {
  // A seeded generator: a failure names an input that the next run meets again.
  let seed = 16;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = 'ab09-._/Z ';
  const names: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const length = [0, 1, 2, 3, 62, 63, 64][next(7)];
    let name = '';
    for (let k = 0; k < length; k++) name += alphabet[next(k === 0 || k === length - 1 ? alphabet.length : 5)];
    names.push(name);
  }
  const c = helperNames(names);
  const differ = names.filter((name, i) => c[i] !== isInstanceName(name));
  t.deepEqual(differ, []);
  t.true(c.filter(Boolean).length > 100 && c.filter((v) => !v).length > 100, 'both answers are met');
});

test('a NUL cannot reach the helper, and lib refuses names holding one', (t) => {
  // An argv string ends at its NUL, so the helper only ever sees what comes before it.
  t.false(isInstanceName('a\0b'));
  t.throws(() => spawnSync(helperPath(), ['selftest', 'name', 'a\0b']));
});

const ROLES: Record<string, RunFile> = {
  'init-pid': 'initPid',
  'monitor-pid': 'monitorPid',
  'exec-socket': 'execSocket',
  'console-socket': 'consoleSocket',
  'exec-check': 'execCheck',
  'attach-args': 'attachArgs',
};

const ROOTS: (string | undefined)[] = [
  undefined,
  '',
  '/tmp/one-source-state',
  '/run/one source/x',
  '/a/b/',
  '/a//b',
  '//a',
  '/a/./b',
  '/a/../b',
  '/a/.',
  '/a/..',
  '/..',
  '/../..',
  '/a/b/../../..',
  '/',
  '///',
  '/.',
  'rel/dir',
  './x',
  '.',
  '..',
  '/a/.b',
  '/a/..b',
  '/a/b...',
  '/a/b/./../c//',
];

test('the helper builds the paths lib builds, or hands the command to node', (t) => {
  let built = 0;
  // Each root varied with the other one usual: a root is taken or not by itself.
  const pairs = [...ROOTS.map((r) => [r, '/run/one-source'] as const), ...ROOTS.map((r) => ['/tmp/one-source', r] as const)];
  for (const [state, run] of pairs) {
    const env: NodeJS.ProcessEnv = {};
    if (state !== undefined) env.TSLXC_DIR = state;
    if (run !== undefined) env.TSLXC_RUN_DIR = run;
    const paths = defaultPaths(env);
    for (const name of state === undefined && run !== undefined ? ['dev1', 'x'.repeat(63), '123', '..', 'a/b'] : ['dev1']) {
      const c = helper(['paths', name], env);
      const where = `${name} with TSLXC_DIR=${JSON.stringify(state)} TSLXC_RUN_DIR=${JSON.stringify(run)}`;
      if (!isInstanceName(name)) {
        t.is(c.code, 1, where);
        continue;
      }
      // A relative root depends on a working directory: the helper leaves it to node.
      const usable = (v: string | undefined) => !v || path.isAbsolute(v);
      if (!usable(state) || !usable(run)) {
        t.is(c.code, 1, where);
        continue;
      }
      t.is(c.code, 0, where);
      const lines = Object.fromEntries(
        c.out
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]),
      );
      const want: Record<string, string> = { config: containerConfigFile(paths, name), plan: startPlanFile(paths, name) };
      for (const [role, file] of Object.entries(ROLES)) want[role] = containerRunFile(paths, name, file);
      t.deepEqual(lines, want, where);
      built++;
    }
  }
  t.true(built >= 40, 'absolute roots keep their fast paths');
});

test('the pid files name the same run dir files on both sides', (t) => {
  const c = helper(['paths', 'dev1'], { TSLXC_RUN_DIR: '/r' });
  for (const [role, file] of Object.entries(ROLES)) t.true(c.out.includes(`${role} /r/containers/dev1/${RUN_FILES[file]}\n`), role);
});

const REFS = [
  '12 34',
  '12 34\n',
  '1 0',
  '2147483647 1',
  '12 9007199254740991',
  `12 ${'0'.repeat(19)}1`,
  '12 34\n\n',
  ' 12 34',
  '12  34',
  '12\t34',
  '012 34',
  '0 5',
  '-1 5',
  '+12 34',
  '12 -34',
  '12 +34',
  '12 0x10',
  '0x10 5',
  '1e3 5',
  '12',
  '12 ',
  '',
  '\n',
  'abc',
  '12 34 56',
  '2147483648 1',
  '99999999999 1',
  '12 9007199254740992',
  `12 ${'0'.repeat(20)}1`,
  '12 34\r\n',
  '12.5 34',
  '12 34.5',
  '１２ 34',
  '12 ３４',
];

test('the helper reads a pid file as parseRef does', (t) => {
  const c = helper(['pidref', ...REFS]);
  t.is(c.code, 0);
  const lines = c.out.split('\n').slice(0, -1);
  t.is(lines.length, REFS.length);
  REFS.forEach((text, i) => {
    const ts = parseRef(text);
    t.is(lines[i], ts ? `${ts.pid} ${ts.startTime}` : 'none', JSON.stringify(text));
  });
});

/** Start time as /proc says it, zombies included (processStartTime calls those dead). */
function rawStartTime(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

async function zombie(): Promise<{ pid: number; parent: ReturnType<typeof spawn> }> {
  // sh forks a child that exits soon, and becomes sleep first, which never reaps it (the shell
  // itself would if the child ended before the exec).
  const parent = spawn('sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  for (let i = 0; i < 500; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return { pid, parent };
    await new Promise((r) => setTimeout(r, 10));
  }
  parent.kill('SIGKILL');
  throw new Error(`process ${pid} did not become a zombie`);
}

test('the helper and liveness agree on whether init is alive', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-one-source-'));
  const runDir = path.join(root, 'run');
  const paths = { ...defaultPaths({ TSLXC_DIR: path.join(root, 'state'), TSLXC_RUN_DIR: runDir }) };
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  let z: Awaited<ReturnType<typeof zombie>> | undefined;
  try {
    z = await zombie();
    const self = processStartTime(process.pid)!;
    const exited = spawnSync('true').pid!;
    const fixtures: [string, string | undefined, boolean][] = [
      // [what, init.pid's content (undefined: no file), alive]
      ['this process', `${process.pid} ${self}\n`, true],
      ['a live child', `${sleeper.pid} ${processStartTime(sleeper.pid!)}\n`, true],
      ['without the newline', `${process.pid} ${self}`, true],
      ['a reused pid (other start time)', `${process.pid} ${self + 1}\n`, false],
      ['a reused pid (start 0)', `${process.pid} 0\n`, false],
      ['a dead pid', `${exited} 1\n`, false],
      ['a zombie', `${z.pid} ${rawStartTime(z.pid)}\n`, false],
      ['no file', undefined, false],
      ['an empty file', '', false],
      ['garbage', 'not a pid\n', false],
      ['a pid alone', `${process.pid}\n`, false],
      ['a NUL after a live ref', `${process.pid} ${self}\0junk`, false],
      ['a live ref, then more', `${process.pid} ${self} 7\n`, false],
      ['pid 0', '0 0\n', false],
      ['pid 1 with its start time', `1 ${rawStartTime(1)}\n`, true],
    ];
    for (const [what, text, alive] of fixtures) {
      const name = 'fixture1';
      const dir = path.join(runDir, 'containers', name);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      if (text !== undefined) fs.writeFileSync(path.join(dir, RUN_FILES.initPid), text);
      const ts = liveness(paths, name).initAlive;
      const c = helper(['alive', name], { TSLXC_RUN_DIR: runDir });
      t.is(ts, alive, `lib: ${what}`);
      t.is(c.code === 0, alive, `helper: ${what}`);
      if (alive) t.is(c.out, `${liveness(paths, name).files.init!.pid}\n`, what);
    }
  } finally {
    sleeper.kill('SIGKILL');
    z?.parent.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the helper was built from the layout.json lib/ reads', (t) => {
  // A helper built before an edit of layout.json would follow the old rules: rebuild it.
  const root = path.resolve(path.dirname(helperPath()), '../..');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-gen-layout-'));
  try {
    const gen = spawnSync(
      process.execPath,
      [path.join(root, 'scripts/gen-native-layout.mjs'), path.join(root, 'lib/state/layout.json'), path.join(out, 'gen-layout.h')],
      { encoding: 'utf8' },
    );
    t.is(gen.status, 0, gen.stderr);
    t.is(
      fs.readFileSync(path.join(root, 'native/build/gen-layout.h'), 'utf8'),
      fs.readFileSync(path.join(out, 'gen-layout.h'), 'utf8'),
      'native/build/gen-layout.h is stale: run "npm run build:native"',
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
