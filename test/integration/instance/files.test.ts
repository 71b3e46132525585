import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { launcherPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * file push/pull failures: one line and exit 1 every time, whatever the size and the source, and
 * nothing half-written left in the container or on the host. A helper that fails before it read
 * its stdin must not end the CLI with node's EPIPE stack trace.
 */
if (requireRoot(test)) {
  const env = new TestEnv('files');
  const small = `${env.root}/small`;
  const big = `${env.root}/big`;
  const TRIES = 25;

  const run = (args: string[], input?: Buffer) => {
    const r = spawnSync(launcherPath, args, { env: env.env, input, timeout: 120_000 });
    return { code: r.status ?? 128, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
  };
  /** Exit 1, one line on stderr matching `re`, nothing of node's own. */
  const oneLine = (t: ExecutionContext, r: { code: number; stdout: string; stderr: string }, re: RegExp, what: string) => {
    const lines = r.stderr.trim().split('\n');
    const ok = r.code === 1 && lines.length === 1 && re.test(r.stderr) && !/EPIPE|node:|^\s+at /m.test(r.stderr) && r.stdout === '';
    if (!ok) t.fail(`${what}: exit ${r.code}, stderr: ${r.stderr.slice(0, 600)}`);
    return ok;
  };
  /** Files a push or pull writes before its rename (the helper's ".NAME.tslxc-PID", the host side's "NAME.tslxc-push"/"-pull-PID"). */
  const tempFiles = (dir: string) => spawnSync('find', [dir, '-xdev', '-name', '*.tslxc-*'], { encoding: 'utf8' }).stdout.trim();

  test.before(() => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    fs.writeFileSync(small, crypto.randomBytes(300 * 1024));
    fs.writeFileSync(big, crypto.randomBytes(20 * 1024 * 1024));
    for (const args of [
      ['launch', 'busybox', 'fr'],
      ['create', 'busybox', 'fs'],
    ]) {
      const c = env.cli(args);
      if (c.code !== 0) throw new Error(c.stderr);
    }
  });
  leftoverHooks(test, env);

  test.serial('a push killed midway leaves the target as it was and no temp file', async (t) => {
    env.ok(t, ['exec', 'fr', '--', 'sh', '-c', 'echo original > /tmp/target']);
    // A sparse source: a gigabyte to send, none of it on disk here.
    const huge = `${env.root}/huge`;
    fs.closeSync(fs.openSync(huge, 'w'));
    fs.truncateSync(huge, 1 << 30);
    const upperTmp = `${env.paths.stateDir}/containers/fr/rootfs/tmp`;
    const temp = () => (fs.existsSync(upperTmp) ? fs.readdirSync(upperTmp).filter((f) => f.startsWith('.target.tslxc-')) : []);
    const cli = spawn(launcherPath, ['file', 'push', huge, 'fr/tmp/target'], { env: env.env, stdio: 'ignore' });
    const ended = new Promise((r) => cli.on('close', r));
    // Killed once the helper writes its temp file (the container's upper dir shows it on the host).
    let deadline = Date.now() + 60_000;
    while (Date.now() < deadline && temp().length === 0 && cli.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    t.is(cli.exitCode, null, 'the push ended before it could be killed');
    cli.kill('SIGKILL');
    await ended;
    deadline = Date.now() + 20_000;
    while (Date.now() < deadline && temp().length > 0) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(temp(), []);
    t.is(env.ok(t, ['exec', 'fr', '--', 'cat', '/tmp/target']), 'original\n');
  });

  for (const [ct, state, tries] of [
    ['fr', 'running', TRIES],
    ['fs', 'stopped', 5],
  ] as const) {
    test.serial(`push into a missing directory of a ${state} container: one line every time (300 KB and 20 MB, file and stdin)`, (t) => {
      let good = 0;
      for (const src of [small, big]) {
        const data = fs.readFileSync(src);
        for (let i = 0; i < tries; i++) {
          const re = new RegExp(`^Error: Cannot push to /nope/dir/f: /nope/dir is not a directory in "${ct}" \\(use -p to create it\\)$`, 'm');
          if (oneLine(t, run(['file', 'push', src, `${ct}/nope/dir/f`]), re, `push ${src} #${i}`)) good++;
          if (oneLine(t, run(['file', 'push', '-', `${ct}/nope/dir/f`], data), re, `push - (${src}) #${i}`)) good++;
        }
      }
      t.is(good, 4 * tries);
      if (state === 'running') t.is(env.ok(t, ['exec', ct, '--', 'find', '/', '-xdev', '-name', '*.tslxc-*']).trim(), '');
      t.is(tempFiles(`${env.paths.stateDir}/containers/${ct}`), '');
    });

    test.serial(`pull of a missing file from a ${state} container: one line every time, no temp file on the host`, (t) => {
      const out = `${env.root}/pulled-${ct}`;
      fs.mkdirSync(out);
      let good = 0;
      for (let i = 0; i < tries; i++) {
        if (oneLine(t, run(['file', 'pull', `${ct}/nope/x`, out]), new RegExp(`^Error: Cannot pull /nope/x: no such file in "${ct}"$`, 'm'), `pull #${i}`))
          good++;
      }
      t.is(good, tries);
      t.deepEqual(fs.readdirSync(out), []);
    });

    test.serial(`push -p creates the directories; 20 MB from stdin arrive whole (${state} container)`, (t) => {
      env.ok(t, ['file', 'push', '-p', small, `${ct}/made/by/push/f`]);
      const r = run(['file', 'push', '-p', '-', `${ct}/made/by/stdin/g`], fs.readFileSync(big));
      t.is(r.code, 0, r.stderr);
      const back = `${env.root}/back-${ct}`;
      env.ok(t, ['file', 'pull', `${ct}/made/by/stdin/g`, back]);
      t.true(fs.readFileSync(back).equals(fs.readFileSync(big)));
      env.ok(t, ['file', 'pull', `${ct}/made/by/push/f`, back]);
      t.true(fs.readFileSync(back).equals(fs.readFileSync(small)));
    });
  }
}
