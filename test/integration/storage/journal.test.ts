import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { entryStamps } from '../../helpers/stamps.js';

/**
 * Crash safety at every step of the journaled commits: tslxc SIGKILLs itself at a named step
 * (TSLXC_TEST_CRASH_AT, honoured only with a private TSLXC_DIR), and the next list / config get /
 * start sees the old state or the new one, whole: the root and the config from the same side of
 * the commit, no temp dir, subvolume or journal left once the container was used again.
 */
if (requireRoot(test)) {
  const env = new TestEnv('jr');
  const POOLS: Array<[string, string[]]> = [
    ['plain', ['dir']],
    ['ov', ['overlay']],
    ['bt', ['btrfs', 'size=600MiB']],
  ];
  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const [name, args] of POOLS) {
      const c = env.cli(['storage', 'create', name, ...args]);
      if (c.code !== 0) throw new Error(c.stderr);
    }
  });
  leftoverHooks(test, env);

  const ct = (name: string) => path.join(env.paths.stateDir, 'containers', name);
  const btContainers = path.join(env.paths.stateDir, 'storage-pools/bt/containers');

  /** tslxc ARGS, told to kill itself at STEP: true when it did. */
  function crashAt(step: string, args: string[]): boolean {
    const r = spawnSync(process.execPath, [cliPath, ...args], { env: { ...env.env, TSLXC_TEST_CRASH_AT: step }, encoding: 'utf8', timeout: 120_000 });
    return r.signal === 'SIGKILL';
  }

  /** The container's data and config, as the next commands see them (it is started to read its root). */
  function observe(t: ExecutionContext, name: string): string {
    const listed = JSON.parse(env.ok(t, ['list', '--format', 'json']))
      .filter((c: { name: string }) => c.name.startsWith(name))
      .map((c: { name: string; status: string }) => `${c.name}:${c.status}`);
    t.deepEqual(listed, [`${name}:Stopped`]);
    const mark = env.ok(t, ['config', 'get', name, 'user.mark']).trim();
    env.ok(t, ['start', name]);
    const data = env.ok(t, ['exec', name, '--', 'cat', '/root/state']).trim();
    env.ok(t, ['stop', name, '--force']);
    return `${data}/${mark}`;
  }

  function noLeftovers(t: ExecutionContext, name: string): void {
    t.deepEqual(
      fs.readdirSync(ct(name)).filter((e) => e.startsWith('.')),
      [],
      'nothing of the dead restore in the container dir',
    );
    if (fs.existsSync(btContainers))
      t.deepEqual(
        fs.readdirSync(btContainers).filter((e) => e.startsWith('.')),
        [],
        'no temp subvolume in the pool',
      );
  }

  /** The container's dir and the btrfs pool's subvolumes, each entry with inode and times: what a read must not change. */
  function files(name: string): string[] {
    return entryStamps([ct(name), btContainers], 1);
  }

  /**
   * The reads after a kill (list, info, config show and get) show the committed state and write
   * nothing: a committed journal is still there afterwards, for the next command that takes the
   * container's lock (observe's start).
   */
  function readsWriteNothing(t: ExecutionContext, name: string, step: string, committed: boolean, mark: string): void {
    const before = files(name);
    const journal = path.join(ct(name), '.journal.json');
    t.is(fs.existsSync(journal), committed, `${step}: a journal exactly when the commit was made and not finished`);
    t.deepEqual(JSON.parse(env.ok(t, ['list', '--format', 'json'])).filter((c: { name: string }) => c.name === name).length, 1);
    t.is(JSON.parse(env.ok(t, ['info', name, '--format', 'json'])).config['user.mark'], mark, `${step}: info shows the committed config`);
    t.regex(env.ok(t, ['config', 'show', name]), new RegExp(`user.mark: ${mark}`), `${step}: config show too`);
    t.is(env.ok(t, ['config', 'get', name, 'user.mark']).trim(), mark);
    t.deepEqual(files(name), before, `${step}: the reads left every file as it was`);
    t.is(fs.existsSync(journal), committed, `${step}: the journal is still there`);
  }

  function makeNew(t: ExecutionContext, name: string): void {
    env.ok(t, ['start', name]);
    env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo new > /root/state; echo more > /root/extra']);
    env.ok(t, ['stop', name, '--force']);
    env.ok(t, ['config', 'set', name, 'user.mark=new']);
  }

  // Before the commit the old state stays; from the commit on, the next command finishes the restore.
  const RESTORE_STEPS: Array<[string, string]> = [
    ['restore:built', 'new/new'],
    ['restore:before-commit', 'new/new'],
    ['restore:committed', 'old/old'],
    ['restore:rename-1', 'old/old'],
    ['restore:rename-2', 'old/old'],
    ['restore:rename-3', 'old/old'],
    ['restore:done', 'old/old'],
  ];

  for (const [pool] of POOLS) {
    test.serial(`${pool}: a restore killed at any step leaves the old root and config or the new ones`, async (t) => {
      const name = `r-${pool}`;
      t.teardown(() => void env.cli(['delete', '--force', name]));
      env.ok(t, ['launch', 'busybox', name, '-s', pool, '-c', 'user.mark=old']);
      env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo old > /root/state']);
      env.ok(t, ['stop', name, '--force']);
      env.ok(t, ['snapshot', 'create', name, 's1']);
      for (const [step, want] of RESTORE_STEPS) {
        makeNew(t, name);
        t.is(observe(t, name), 'new/new');
        t.true(crashAt(step, ['snapshot', 'restore', name, 's1']), `${step}: killed`);
        readsWriteNothing(t, name, step, /^restore:(committed|rename-)/.test(step), want.split('/')[1]);
        t.is(observe(t, name), want, step);
        noLeftovers(t, name);
      }
      // After all that, a restore runs to the end and the snapshot is intact.
      makeNew(t, name);
      env.ok(t, ['snapshot', 'restore', name, 's1']);
      t.is(observe(t, name), 'old/old');
      env.ok(t, ['delete', '--force', name]);
    });
  }

  test.serial('btrfs: a snapshot or a snapshot rename killed between its renames is finished by the next command', async (t) => {
    const name = 's-bt';
    env.ok(t, ['launch', 'busybox', name, '-s', 'bt']);
    env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo one > /root/state']);
    env.ok(t, ['stop', name, '--force']);
    const snaps = () => JSON.parse(env.ok(t, ['snapshot', 'list', name, '--format', 'json'])).map((s: { name: string }) => s.name);
    const subvols = () => fs.readdirSync(path.join(env.paths.stateDir, 'storage-pools/bt/snapshots', name)).sort();

    t.true(crashAt('snapshot:built', ['snapshot', 'create', name, 's1']));
    t.deepEqual(snaps(), [], 'killed before its commit: no snapshot');
    t.true(crashAt('snapshot:rename-1', ['snapshot', 'create', name, 's1']));
    t.deepEqual(snaps(), ['s1'], 'killed after its commit: the snapshot, whole');
    env.ok(t, ['snapshot', 'create', name, 's2']);
    t.deepEqual(subvols(), ['s1', 's2'], "the dead snapshots' temp subvolumes were swept");

    t.true(crashAt('snapshot-rename:rename-1', ['snapshot', 'rename', name, 's1', 'first']));
    t.deepEqual(snaps(), ['first', 's2']);
    t.deepEqual(subvols(), ['first', 's2']);
    env.ok(t, ['start', name]);
    env.ok(t, ['exec', name, '--', 'sh', '-c', 'echo two > /root/state']);
    env.ok(t, ['stop', name, '--force']);
    env.ok(t, ['snapshot', 'restore', name, 'first']);
    env.ok(t, ['start', name]);
    t.is(env.ok(t, ['exec', name, '--', 'cat', '/root/state']).trim(), 'one');
    env.ok(t, ['delete', '--force', name]);
    t.deepEqual(fs.readdirSync(btContainers), []);
    for (const [p] of POOLS) env.ok(t, ['storage', 'delete', p]);
  });
}
