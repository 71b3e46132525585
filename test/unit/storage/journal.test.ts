import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { commitRenames, finalPath, finishJournal, journalFile, readJournal, type Journal } from '../../../lib/state/journal.js';
import { entryStamps } from '../../helpers/stamps.js';

/**
 * The journal of multi-rename commits: a replay finishes exactly the renames a dead writer had
 * not done, whichever step it died at, and leaves a live writer's journal alone.
 */
const made: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-journal-'));
  made.push(dir);
  return dir;
}
test.after.always(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A restore's shape: root -> old, new -> root, config.new -> config; the first k renames done. */
function restoreAt(k: number): { dir: string; j: Journal } {
  const dir = tmp();
  const p = (n: string) => path.join(dir, n);
  fs.mkdirSync(p('rootfs'));
  fs.writeFileSync(p('rootfs/which'), 'old');
  fs.mkdirSync(p('.rootfs-new-1'));
  fs.writeFileSync(p('.rootfs-new-1/which'), 'new');
  fs.writeFileSync(p('config.yaml'), 'old');
  fs.writeFileSync(p('.config-restore-1.yaml'), 'new');
  const renames: Array<[string, string]> = [
    [p('rootfs'), p('.rootfs-old-1')],
    [p('.rootfs-new-1'), p('rootfs')],
    [p('.config-restore-1.yaml'), p('config.yaml')],
  ];
  for (const [a, b] of renames.slice(0, k)) fs.renameSync(a, b);
  // A writer that is dead: a PID no process has (pid_max is below 2^22).
  const j: Journal = { owner: '4194304 1', what: 'restore', renames, leftovers: [p('.rootfs-old-1')] };
  fs.writeFileSync(journalFile(dir), JSON.stringify(j));
  return { dir, j };
}

for (const k of [0, 1, 2, 3]) {
  test(`a dead writer's journal after ${k} of 3 renames is finished: the new root and config, nothing left over`, (t) => {
    const { dir } = restoreAt(k);
    t.is(finishJournal(dir), 'finished');
    t.is(fs.readFileSync(path.join(dir, 'rootfs/which'), 'utf8'), 'new');
    t.is(fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'), 'new');
    t.deepEqual(fs.readdirSync(dir).sort(), ['config.yaml', 'rootfs']);
    t.is(finishJournal(dir), 'none');
  });
}

test("a live writer's journal is left alone", (t) => {
  const { dir, j } = restoreAt(1);
  const start = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
  fs.writeFileSync(journalFile(dir), JSON.stringify({ ...j, owner: `${process.pid} ${start}` }));
  t.is(finishJournal(dir), 'pending');
  t.false(fs.existsSync(path.join(dir, 'rootfs')), 'mid-swap, untouched');
});

test('a journal naming a dir that is not there (a pool not mounted) waits', (t) => {
  const { dir, j } = restoreAt(1);
  fs.writeFileSync(journalFile(dir), JSON.stringify({ ...j, renames: [...j.renames, [path.join(dir, 'gone/x'), path.join(dir, 'y')]] }));
  t.is(finishJournal(dir), 'pending');
});

test('commitRenames runs the renames in order and removes its journal', (t) => {
  const { dir, j } = restoreAt(0);
  fs.rmSync(journalFile(dir));
  commitRenames(dir, 'restore', j.renames, j.leftovers);
  t.is(fs.readFileSync(path.join(dir, 'rootfs/which'), 'utf8'), 'new');
  t.false(fs.existsSync(journalFile(dir)));
  t.true(fs.existsSync(path.join(dir, '.rootfs-old-1')), 'the caller removes the leftovers');
});

test('a writer SIGKILLed at a crash point leaves a journal the next reader finishes', async (t) => {
  const { dir, j } = restoreAt(0);
  fs.rmSync(journalFile(dir));
  const mod = path.resolve('dist/lib/state/journal.js');
  const script = `import(${JSON.stringify(mod)}).then((m) => m.commitRenames(${JSON.stringify(dir)}, 'restore', ${JSON.stringify(j.renames)}, ${JSON.stringify(j.leftovers)}))`;
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, TSLXC_DIR: dir, TSLXC_TEST_CRASH_AT: 'restore:rename-1' }, stdio: 'ignore' });
  const signal = await new Promise((r) => child.on('exit', (_c, s) => r(s)));
  t.is(signal, 'SIGKILL');
  t.false(fs.existsSync(path.join(dir, 'rootfs')), 'killed between the two renames of the root');
  t.is(finishJournal(dir), 'finished');
  t.is(fs.readFileSync(path.join(dir, 'rootfs/which'), 'utf8'), 'new');
  t.is(fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'), 'new');
});

test('crash points are ignored without a private state dir', (t) => {
  const r = spawnSync(
    process.execPath,
    ['-e', `import(${JSON.stringify(path.resolve('dist/lib/util/crash.js'))}).then((m) => { m.crashPoint('x'); console.log('alive'); })`],
    { env: { ...process.env, TSLXC_DIR: '', TSLXC_TEST_CRASH_AT: 'x' }, encoding: 'utf8' },
  );
  t.is(r.stdout.trim(), 'alive');
});

/**
 * A container rename's shape: a place outside the dir, the run dir, the config, then the dir
 * itself, which takes the journal along; the first k renames done (the journal in the new dir
 * once the last is).
 */
function renameAt(k: number): { base: string; from: string; to: string } {
  const base = tmp();
  const p = (n: string) => path.join(base, n);
  for (const d of ['containers/a', 'pool/a', 'run/a']) fs.mkdirSync(p(d), { recursive: true });
  fs.writeFileSync(p('containers/a/config.yaml'), 'name: a');
  fs.writeFileSync(p('containers/a/.config-rename-1.yaml'), 'name: b');
  fs.writeFileSync(p('pool/a/which'), 'root');
  const renames: Array<[string, string]> = [
    [p('pool/a'), p('pool/b')],
    [p('run/a'), p('run/b')],
    [p('containers/a/.config-rename-1.yaml'), p('containers/a/config.yaml')],
    [p('containers/a'), p('containers/b')],
  ];
  const j: Journal = { owner: '4194304 1', what: 'rename', renames, leftovers: [p('containers/.renaming-b')] };
  fs.writeFileSync(p('containers/.renaming-b'), 'a');
  fs.writeFileSync(journalFile(p('containers/a')), JSON.stringify(j));
  for (const [a, b] of renames.slice(0, k)) fs.renameSync(a, b);
  return { base, from: p('containers/a'), to: p('containers/b') };
}

for (const k of [0, 1, 2, 3, 4]) {
  test(`a dead rename's journal after ${k} of 4 renames is finished from where it is: everything under the new name`, (t) => {
    const { base, from, to } = renameAt(k);
    t.is(finishJournal(k === 4 ? to : from), 'finished');
    t.false(fs.existsSync(from));
    t.deepEqual(fs.readdirSync(to).sort(), ['config.yaml'], 'no journal, no replay lock, no temp');
    t.is(fs.readFileSync(path.join(to, 'config.yaml'), 'utf8'), 'name: b');
    t.is(fs.readFileSync(path.join(base, 'pool/b/which'), 'utf8'), 'root');
    t.deepEqual(fs.readdirSync(path.join(base, 'run')), ['b']);
    t.deepEqual(fs.readdirSync(path.join(base, 'containers')), ['b'], 'the marker went with the leftovers');
    t.is(finishJournal(to), 'none');
  });
}

test('commitRenames removes a journal that moved with its dir', (t) => {
  const base = tmp();
  const from = path.join(base, 'a');
  const to = path.join(base, 'b');
  fs.mkdirSync(from);
  commitRenames(from, 'rename', [[from, to]]);
  t.deepEqual(fs.readdirSync(base), ['b']);
  t.deepEqual(fs.readdirSync(to), []);
});

for (const k of [0, 1, 2, 3]) {
  test(`read without writing, a dead restore's journal after ${k} of 3 renames shows the new root and config`, (t) => {
    const { dir } = restoreAt(k);
    const before = entryStamps([dir]);
    const v = readJournal(dir)!;
    t.is(v.done, k);
    t.is(fs.readFileSync(finalPath(v, path.join(dir, 'config.yaml'))!, 'utf8'), 'new');
    t.is(fs.readFileSync(path.join(finalPath(v, path.join(dir, 'rootfs'))!, 'which'), 'utf8'), 'new');
    t.is(fs.readFileSync(finalPath(v, path.join(dir, 'rootfs/which'))!, 'utf8'), 'new', 'a path below a renamed dir');
    t.deepEqual(entryStamps([dir]), before, 'nothing written');
  });
}

for (const k of [0, 1, 2, 3, 4]) {
  test(`read without writing, a dead rename's journal after ${k} of 4 renames: the new name's config, none under the old`, (t) => {
    const { base, from, to } = renameAt(k);
    const before = entryStamps([base]);
    const v = readJournal(k === 4 ? to : from)!;
    t.is(fs.readFileSync(finalPath(v, path.join(to, 'config.yaml'))!, 'utf8'), 'name: b');
    t.is(fs.readFileSync(finalPath(v, path.join(base, 'pool/b/which'))!, 'utf8'), 'root');
    const old = finalPath(v, path.join(from, 'config.yaml'));
    t.true(old === undefined || !fs.existsSync(old), 'the old name is gone once committed');
    t.deepEqual(entryStamps([base]), before, 'nothing written');
  });
}

test('no journal, or one caught half-written, reads as none', (t) => {
  const dir = tmp();
  t.is(readJournal(dir), undefined);
  fs.writeFileSync(journalFile(dir), '{"owner": "1 1", "ren');
  t.is(readJournal(dir), undefined);
});
