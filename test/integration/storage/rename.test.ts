import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { entryStamps } from '../../helpers/stamps.js';

/**
 * A rename killed at every step (TSLXC_TEST_CRASH_AT, honoured only with a private TSLXC_DIR):
 * the next command, whichever it is and whichever name it asks for, finds the container under
 * exactly one name, the old one before the journal's commit and the new one from it on, whole:
 * config, root (and on btrfs its subvolume and snapshots), run dir and identity files.
 */
if (requireRoot(test)) {
  const env = new TestEnv('rn');
  const POOLS: Array<[string, string[], number]> = [
    // pool, how it is made, how many renames the journal holds (root places, run dir, config, dir)
    ['plain', ['dir'], 3],
    ['ov', ['overlay'], 3],
    ['bt', ['btrfs', 'size=600MiB'], 5],
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

  const containers = path.join(env.paths.stateDir, 'containers');
  const btContainers = path.join(env.paths.stateDir, 'storage-pools/bt/containers');
  const btSnapshots = path.join(env.paths.stateDir, 'storage-pools/bt/snapshots');

  /** tslxc ARGS, told to kill itself at STEP: true when it did. */
  function crashAt(step: string, args: string[]): boolean {
    const r = spawnSync(process.execPath, [cliPath, ...args], { env: { ...env.env, TSLXC_TEST_CRASH_AT: step }, encoding: 'utf8', timeout: 120_000 });
    return r.signal === 'SIGKILL';
  }

  const listed = (t: ExecutionContext, prefix: string) =>
    JSON.parse(env.ok(t, ['list', '--format', 'json']))
      .filter((c: { name: string }) => c.name.startsWith(prefix))
      .map((c: { name: string; status: string }) => `${c.name}:${c.status}`);

  /**
   * What a read must not change: every entry of the containers dir and of each container's dir (not
   * below), and on btrfs the pool's subvolumes, with inode and change time.
   */
  function files(): string[] {
    return [...entryStamps([containers], 2), ...entryStamps([btContainers, btSnapshots], 1)].sort();
  }

  /** The command run right after the kill: each asks for the container another way. */
  function nextCommand(t: ExecutionContext, i: number, oldName: string, newName: string, want: string): void {
    const other = want === oldName ? newName : oldName;
    switch (i % 4) {
      case 0:
        listed(t, oldName.slice(0, -1));
        return;
      case 1: // the name it has now: started at once
        env.ok(t, ['start', want]);
        env.ok(t, ['stop', want, '--force']);
        return;
      case 2: // the name it has not: one line, not found
      case 3: {
        const r = env.cli(i % 4 === 2 ? ['start', other] : ['info', other]);
        t.is(r.code, 1);
        t.regex(r.stderr, new RegExp(`^Error: Container "${other}" not found`), r.stderr);
        return;
      }
    }
  }

  for (const [pool, , steps] of POOLS) {
    test.serial(`${pool}: a rename killed at any step leaves the container whole under the old name or the new one`, (t) => {
      const names = [`n-${pool}-a`, `n-${pool}-b`];
      t.teardown(() => {
        for (const n of names) env.cli(['delete', '--force', n]);
      });
      env.ok(t, ['launch', 'busybox', names[0], '-s', pool]);
      env.ok(t, ['exec', names[0], '--', 'sh', '-c', 'echo kept > /root/state']);
      env.ok(t, ['stop', names[0], '--force']);
      env.ok(t, ['snapshot', 'create', names[0], 's0']);
      const STEPS: Array<[string, boolean]> = [
        ['rename:prepared', false],
        ['rename:before-commit', false],
        ['rename:committed', true],
        ...Array.from({ length: steps }, (_, i) => [`rename:rename-${i + 1}`, true] as [string, boolean]),
      ];
      let cur = 0;
      STEPS.forEach(([step, done], i) => {
        const [from, to] = [names[cur], names[1 - cur]];
        t.true(crashAt(step, ['rename', from, to]), `${step}: killed`);
        const want = done ? to : from;
        const before = files();
        const journal = () => [from, to].some((n) => fs.existsSync(path.join(containers, n, '.journal.json')));
        const pending = journal();
        nextCommand(t, i, from, to, want);
        // Reads (list, info, config show) see the committed name and write nothing: a journal is
        // still there for the next command that takes the container's lock.
        const read = i % 4 === 0 || i % 4 === 3;
        if (read) t.deepEqual(files(), before, `${step}: ${i % 4 ? 'info' : 'list'} left the files as they were`);
        const after = files();
        t.deepEqual(listed(t, `n-${pool}-`), [`${want}:Stopped`], step);
        t.regex(env.ok(t, ['config', 'show', want]), new RegExp(`^name: ${want}$`, 'm'), `${step}: config show reads the committed config`);
        t.is(JSON.parse(env.ok(t, ['info', want, '--format', 'json'])).name, want, `${step}: so does info`);
        t.deepEqual(files(), after, `${step}: list, config show and info left the files as they were`);
        if (read) t.is(journal(), pending, `${step}: the journal is still there`);
        // The first command that takes the lock finishes the rename, or sweeps what it left.
        env.ok(t, ['config', 'set', want, 'user.step', step]);
        t.deepEqual(
          fs.readdirSync(containers).filter((e) => e.startsWith(`n-${pool}-`) || e.startsWith('.')),
          [want],
          `${step}: one dir, no temp file or marker`,
        );
        t.false(fs.existsSync(path.join(env.paths.runDir, 'containers', done ? from : to)), `${step}: no run dir under the other name`);
        if (pool === 'bt') {
          t.deepEqual(
            fs.readdirSync(btContainers).filter((e) => e.startsWith(`n-${pool}-`) || e.startsWith('.')),
            [want],
            `${step}: the subvolume under the same name`,
          );
          t.deepEqual(
            fs.readdirSync(btSnapshots).filter((e) => e.startsWith(`n-${pool}-`)),
            [want],
            `${step}: its snapshots too`,
          );
        }
        t.deepEqual(
          fs.readdirSync(path.join(containers, want)).filter((e) => e.startsWith('.')),
          [],
          `${step}: no journal or temp left after the lock was taken`,
        );
        t.deepEqual(
          JSON.parse(env.ok(t, ['snapshot', 'list', want, '--format', 'json'])).map((s: { name: string }) => s.name),
          ['s0'],
        );
        env.ok(t, ['start', want]);
        t.is(env.ok(t, ['exec', want, '--', 'cat', '/root/state']).trim(), 'kept', step);
        if (done) t.is(env.ok(t, ['exec', want, '--', 'cat', '/etc/hostname']).trim(), want, `${step}: its hostname followed`);
        env.ok(t, ['stop', want, '--force']);
        t.deepEqual(
          fs.readdirSync(path.join(containers, want)).filter((e) => e.startsWith('.')),
          [],
          `${step}: no journal or temp left in its dir`,
        );
        if (done) cur = 1 - cur;
      });
      // A rename that runs to the end, and the snapshot restores under the last name.
      const [from, to] = [names[cur], names[1 - cur]];
      env.ok(t, ['rename', from, to]);
      env.ok(t, ['snapshot', 'restore', to, 's0']);
      env.ok(t, ['start', to]);
      t.is(env.ok(t, ['exec', to, '--', 'cat', '/root/state']).trim(), 'kept');
      env.ok(t, ['delete', '--force', to]);
      if (pool === 'bt') {
        t.deepEqual(fs.readdirSync(btContainers), []);
        t.deepEqual(
          fs.readdirSync(btSnapshots).filter((e) => e.startsWith('n-')),
          [],
        );
      }
    });
  }
}
