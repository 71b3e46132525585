import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Context } from '../../../lib/state/context.js';
import { containerDir, containersDir, freezeMarkerFile, type Paths } from '../../../lib/state/paths.js';
import { ConfigCache, listNames, loadConfig } from '../../../lib/state/config.js';
import { journalFile, type Journal } from '../../../lib/state/journal.js';
import type { CgroupDriver } from '../../../lib/cgroup/types.js';
import { thawIfFrozen, useCgroups } from '../../../lib/cgroup/context.js';
import { entryStamps } from '../../helpers/stamps.js';

/** A private installation with a fake cgroup driver that notes what is asked of it. */
function setup(t: { teardown(fn: () => void): void }, state: 'frozen' | 'thawed', thawFails = false) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-recover-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const paths: Paths = { stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: root, cgroupPrefix: 'x' };
  fs.mkdirSync(path.join(paths.runDir, 'containers', 'c1'), { recursive: true });
  fs.mkdirSync(path.join(paths.runDir, 'locks'), { recursive: true });
  const calls: string[] = [];
  const ctx = new Context(paths, { thawIfFrozen });
  useCgroups(ctx, {
    state: async () => {
      calls.push('state');
      return state;
    },
    thaw: async () => {
      calls.push('thaw');
      if (thawFails) throw new Error('cannot thaw');
    },
  } as unknown as CgroupDriver);
  return { ctx, calls, marker: freezeMarkerFile(paths, 'c1') };
}

const deadPid = () => spawnSync('true').pid!;

test('taking the lock thaws what a killed snapshot left frozen, and says so', async (t) => {
  const { ctx, calls, marker } = setup(t, 'frozen');
  fs.writeFileSync(marker, String(deadPid()));
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: true });
  t.deepEqual(calls, ['state', 'thaw']);
  t.false(fs.existsSync(marker));
  calls.length = 0;
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: false }, 'once');
  t.deepEqual(calls, [], 'no marker, no cgroup work');
});

test('a marker whose container runs thawed (killed after its thaw) goes without a thaw', async (t) => {
  const { ctx, calls, marker } = setup(t, 'thawed');
  fs.writeFileSync(marker, String(deadPid()));
  t.deepEqual(await ctx.withInstanceLock('c1', async (r) => r), { thawed: false });
  t.deepEqual(calls, ['state']);
  t.false(fs.existsSync(marker));
});

test('a Context not given the thaw step refuses to run on a container left frozen, and keeps the marker', async (t) => {
  const { ctx, marker } = setup(t, 'frozen');
  const bare = new Context(ctx.paths);
  fs.writeFileSync(marker, String(deadPid()));
  let ran = false;
  await t.throwsAsync(
    bare.withInstanceLock('c1', async () => (ran = true)),
    { message: /Container "c1" may still be frozen by a killed snapshot or copy.*tslxc resume c1/ },
  );
  t.false(ran);
  t.true(fs.existsSync(marker));
});

test('a live freezer is left alone; a thaw that fails stops the operation and keeps the marker', async (t) => {
  const live = setup(t, 'frozen');
  fs.writeFileSync(live.marker, String(process.pid));
  t.deepEqual(await live.ctx.withInstanceLock('c1', async (r) => r), { thawed: false });
  t.deepEqual(live.calls, []);
  t.true(fs.existsSync(live.marker));

  const failing = setup(t, 'frozen', true);
  fs.writeFileSync(failing.marker, String(deadPid()));
  let ran = false;
  await t.throwsAsync(
    failing.ctx.withInstanceLock('c1', async () => (ran = true)),
    { message: 'cannot thaw' },
  );
  t.false(ran);
  t.true(fs.existsSync(failing.marker), 'the next operation tries again');
});

/** A rename of c1 to c2 killed right after its commit: the journal in c1's dir, the marker for c2. */
function killedRename(paths: Paths): void {
  const from = containerDir(paths, 'c1');
  fs.mkdirSync(from, { recursive: true });
  fs.writeFileSync(path.join(from, 'config.yaml'), 'name: c1\nconfig: {}\n');
  fs.writeFileSync(path.join(from, '.config-rename-4194304.yaml'), 'name: c2\nconfig: {}\n');
  const marker = path.join(containersDir(paths), '.renaming-c2');
  fs.writeFileSync(marker, 'c1 4194304 1\n');
  const j: Journal = {
    owner: '4194304 1',
    what: 'rename',
    renames: [
      [path.join(from, '.config-rename-4194304.yaml'), path.join(from, 'config.yaml')],
      [from, containerDir(paths, 'c2')],
    ],
    leftovers: [marker],
  };
  fs.writeFileSync(journalFile(from), JSON.stringify(j));
}

test('reads of a container a killed rename committed see the new name and write nothing; the lock finishes it', async (t) => {
  const { ctx } = setup(t, 'thawed');
  const paths = ctx.paths;
  killedRename(paths);
  const before = entryStamps([paths.stateDir]);
  t.deepEqual(listNames(paths), ['c2']);
  t.is(loadConfig(paths, 'c2').name, 'c2');
  t.throws(() => loadConfig(paths, 'c1'), { message: /Container "c1" not found/ });
  const cache = new ConfigCache(paths);
  t.is(cache.load('c2').name, 'c2');
  t.throws(() => cache.load('c1'), { message: /not found/ });
  t.deepEqual(entryStamps([paths.stateDir]), before, 'nothing under the state dir changed');
  await ctx.withInstanceLock('c2', async () => {});
  t.deepEqual(fs.readdirSync(containersDir(paths)), ['c2']);
  t.deepEqual(fs.readdirSync(containerDir(paths, 'c2')), ['config.yaml']);
  t.is(loadConfig(paths, 'c2').name, 'c2');
});

test('the lock on the old name finishes a committed rename too; one killed before its commit is swept', async (t) => {
  const a = setup(t, 'thawed');
  killedRename(a.ctx.paths);
  await a.ctx.withInstanceLock('c1', async () => {});
  t.deepEqual(fs.readdirSync(containersDir(a.ctx.paths)), ['c2']);

  const b = setup(t, 'thawed');
  killedRename(b.ctx.paths);
  fs.rmSync(journalFile(containerDir(b.ctx.paths, 'c1')));
  t.deepEqual(listNames(b.ctx.paths), ['c1'], 'not committed: the old name');
  await b.ctx.withInstanceLock('c1', async () => {});
  t.deepEqual(fs.readdirSync(containersDir(b.ctx.paths)), ['c1'], 'the marker went');
  t.deepEqual(fs.readdirSync(containerDir(b.ctx.paths, 'c1')), ['config.yaml'], 'and the temp config');
});

test('file push and pull take the lock only when a journal or a rename marker is there, and it finishes them', async (t) => {
  const { ctx } = setup(t, 'thawed');
  killedRename(ctx.paths);
  await ctx.finishPending('c2');
  t.deepEqual(fs.readdirSync(containersDir(ctx.paths)), ['c2'], 'the rename to the name asked for is finished');
  const before = entryStamps([ctx.paths.stateDir]);
  await ctx.finishPending('c2');
  t.deepEqual(entryStamps([ctx.paths.stateDir]), before, 'nothing pending: nothing done');
});
