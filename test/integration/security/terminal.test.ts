import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cliPath, launcherPath, repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { makeKey, runTool, sshOptions } from '../gateway/harness.js';

/**
 * The caller's terminal never reaches a container (issue #15, section 1). admin-tty.py plays the
 * admin's terminal: a pty whose slave is the controlling terminal of the session running
 * `tslxc exec`, `tslxc shell` or the SSH gateway. Inside busybox containers, unprivileged and
 * privileged, each on the normal path (the exec server) and at its process limit (the server's
 * fork fails: attach's direct path), and one Debian container, a command tries what an attacker
 * would:
 * - push a line into the admin's input queue with TIOCSTI (tiocsti.c, built static here: the
 *   busybox image has no compiler) through fds 0-2 and /dev/tty; the kernel here allows it
 *   (dev.tty.legacy_tiocsti=1) on a process's controlling terminal, and on any terminal to a
 *   holder of CAP_SYS_ADMIN (a privileged container's root);
 * - leave a reader behind that keeps the terminal fd it got and reads what the admin types after
 *   exec returned.
 * Neither may reach the admin's terminal: the command gets a pty of the container's own, or pipes
 * that attach relays on the host while the command runs.
 */
if (requireRoot(test)) {
  const env = new TestEnv('tty');
  const injector = path.join(env.root, 'tiocsti');
  const harness = path.join(repoRoot, 'test/integration/security/admin-tty.py');
  const TARGETS = [
    { name: 'ttyu', privileged: false, label: 'unprivileged' },
    { name: 'ttyp', privileged: true, label: 'privileged' },
  ];
  const MARK = 'echo INJECTED';
  // A reader left behind, holding the command's stdin (a background job's own stdin would be
  // /dev/null) and deaf to the hangup of a pty session.
  const READER = 'exec 3<&0; (trap "" HUP; sleep 1; cat <&3 > /tmp/stolen) &';

  interface Admin {
    code: number;
    output: string;
    pending: string;
  }
  /** Runs argv (tslxc's arguments, or a whole command line with raw) on a terminal of its own. */
  const admin = (args: string[], opts: { type?: Array<[number, string]>; after?: string; wait?: number; raw?: boolean } = {}): Admin => {
    const cfg = { cmd: opts.raw ? args : [launcherPath, ...args], type: opts.type ?? [], after: opts.after ?? '', wait: opts.wait ?? 0.3, timeout: 90 };
    const r = spawnSync('/usr/bin/python3', [harness, JSON.stringify(cfg)], { env: env.env, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`admin-tty.py: ${r.stderr || r.error}`);
    return JSON.parse(r.stdout) as Admin;
  };
  const noInjection = (t: ExecutionContext, r: Admin, what: string) => {
    t.log(`${what}: exit ${r.code}: ${r.output.trim().split('\n').pop()}`);
    t.false(r.pending.includes(MARK), `${what}: a line was pushed into the admin's input: ${JSON.stringify(r.pending)}`);
    t.regex(r.output, /fork:/, `${what}: the injector ran`);
  };

  test.before(() => {
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', injector, path.join(repoRoot, 'test/integration/security/tiocsti.c')], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc (scripts/install-deps installs it): ${cc.stderr || cc.error}`);
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    for (const { name, privileged } of TARGETS) {
      for (const [ct, extra] of [
        [name, []],
        [`${name}l`, ['-c', 'limits.processes=12']],
      ] as const) {
        for (const args of [
          ['launch', 'busybox', ct, '-c', `security.privileged=${privileged}`, ...extra],
          ['file', 'push', injector, `${ct}/bin/tiocsti`],
          ['exec', ct, '--', 'chmod', '755', '/bin/tiocsti'],
        ]) {
          const x = env.cli(args);
          if (x.code !== 0) throw new Error(`tslxc ${args.join(' ')}: ${x.stderr}`);
        }
      }
      // At its process limit for good: what is left behind takes every slot that frees.
      const fill = env.cli(['exec', `${name}l`, '--', 'tiocsti', '--fill']);
      if (fill.code !== 0) throw new Error(`fill: ${fill.stderr}`);
    }
  });
  leftoverHooks(test, env);

  const MODES: Array<[string, string[]]> = [
    ['exec (a pty by default on a terminal)', []],
    ['exec -T (pipes)', ['-T']],
    ['exec -t', ['-t']],
  ];

  for (const { name, label } of TARGETS) {
    for (const [where, ct] of [
      ['normal path', name],
      ['at the process limit', `${name}l`],
    ] as const) {
      test.serial(`${label}, ${where}: no keystroke injection into the admin's terminal (exec, shell)`, (t) => {
        for (const [mode, flags] of MODES) {
          const r = admin(['exec', ...flags, ct, '--', 'tiocsti']);
          t.is(r.code, 0, `${mode}: ${r.output}`);
          noInjection(t, r, mode);
          if (ct !== name) t.regex(r.output, /fork:EAGAIN/, `${mode}: the container is at its process limit`);
        }
        // The shell reads what the admin types; at the limit it cannot fork, so it execs.
        const s = admin(['shell', ct], { type: [[1, 'exec tiocsti\n']] });
        noInjection(t, s, 'shell');
      });
    }

    test.serial(`${label}: a reader left behind gets nothing typed after exec returned (exec, shell)`, (t) => {
      const stolen = () => env.cli(['exec', name, '--', 'sh', '-c', 'cat /tmp/stolen 2>/dev/null; rm -f /tmp/stolen']).stdout;
      for (const [mode, flags] of MODES) {
        stolen();
        const r = admin(['exec', ...flags, name, '--', 'sh', '-c', READER], { after: 'SECRET-TYPED\n', wait: 2.5 });
        t.is(r.code, 0, `${mode}: ${r.output}`);
        t.is(stolen(), '', `${mode}: the reader inside got what the admin typed afterwards`);
        t.true(r.pending.includes('SECRET-TYPED'), `${mode}: the admin's keystrokes stayed in the admin's terminal`);
      }
      stolen();
      const s = admin(['shell', name], { type: [[1, `${READER} exit\n`]], after: 'SECRET-TYPED\n', wait: 2.5 });
      t.is(stolen(), '', 'shell: the reader inside got what the admin typed afterwards');
      t.true(s.pending.includes('SECRET-TYPED'));
    });
  }

  test.serial('stdout, stderr and exit codes: -T, -t, stdin from a file and a pipe, no terminal at all', (t) => {
    const ct = TARGETS[0].name;
    const script = 'cat; echo err >&2; exit 3';
    // No terminal (a script): pipes go in as they are.
    let r = env.cli(['exec', ct, '--', 'sh', '-c', script], { input: 'in\n' });
    t.deepEqual([r.code, r.stdout, r.stderr], [3, 'in\n', 'err\n']);
    r = env.cli(['exec', '-T', ct, '--', 'sh', '-c', script], { input: 'in\n' });
    t.deepEqual([r.code, r.stdout, r.stderr], [3, 'in\n', 'err\n']);
    // -t without a terminal: a pty for stdin and stdout; stderr, sent elsewhere, stays apart.
    r = env.cli(['exec', '-t', ct, '--', 'sh', '-c', 'tty; cat; echo err >&2; exit 3'], { input: 'in\n' });
    t.is(r.code, 3);
    t.regex(r.stdout, /\/dev\/pts\/\d+\r\n/);
    t.regex(r.stdout, /in\r\n/);
    t.is(r.stderr, 'err\n');
    t.is(env.cli(['exec', '-t', '-T', ct, '--', 'true']).code, 1, '-t and -T together are refused');

    // On the admin's terminal, stdin from a file, from a pipe; stderr to a file.
    const file = path.join(env.root, 'stdin.txt');
    fs.writeFileSync(file, 'from-file\n');
    const err = path.join(env.root, 'stderr.txt');
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    for (const [what, flags] of [
      ['default', ''],
      ['-T', '-T'],
      ['-t', '-t'],
    ]) {
      const line = `${q(launcherPath)} exec ${flags} ${ct} -- sh -c ${q(script)} < ${q(file)} 2> ${q(err)}`;
      const a = admin(['/bin/sh', '-c', line], { raw: true });
      t.is(a.code, 3, `${what} stdin from a file: ${a.output}`);
      t.regex(a.output, /from-file/, what);
      t.false(a.output.includes('err'), `${what}: stderr stayed apart`);
      t.is(fs.readFileSync(err, 'utf8'), 'err\n', what);
      const p = admin(['/bin/sh', '-c', `echo from-pipe | ${q(launcherPath)} exec ${flags} ${ct} -- sh -c ${q(script)}`], { raw: true });
      t.is(p.code, 3, `${what} stdin from a pipe: ${p.output}`);
      t.regex(p.output, /from-pipe[^]*err|err[^]*from-pipe/, what);
    }
    // -T on a terminal: stdout and stderr stay two streams (the second goes to a file here).
    const a = admin(['/bin/sh', '-c', `${q(launcherPath)} exec -T ${ct} -- sh -c 'echo out; echo err >&2; exit 4' 2> ${q(err)}`], { raw: true });
    t.is(a.code, 4);
    t.is(a.output, 'out\r\n');
    t.is(fs.readFileSync(err, 'utf8'), 'err\n');
  });

  test.serial('Debian (unprivileged): a reader left behind, and injection on the normal path and at the process limit', (t) => {
    const ct = 'ttyd';
    env.ok(t, ['launch', 'debian', ct]);
    env.ok(t, ['file', 'push', injector, `${ct}/usr/local/bin/tiocsti`]);
    env.ok(t, ['exec', ct, '--', 'chmod', '755', '/usr/local/bin/tiocsti']);
    env.cli(['exec', ct, '--', 'systemctl', 'is-system-running', '--wait']);
    for (const [mode, flags] of MODES) {
      const r = admin(['exec', ...flags, ct, '--', 'sh', '-c', READER], { after: 'SECRET-TYPED\n', wait: 2.5 });
      t.is(r.code, 0, `${mode}: ${r.output}`);
      t.is(
        env.cli(['exec', ct, '--', 'sh', '-c', 'cat /tmp/stolen 2>/dev/null; rm -f /tmp/stolen']).stdout,
        '',
        `${mode}: the reader inside got what the admin typed afterwards`,
      );
      t.true(r.pending.includes('SECRET-TYPED'), mode);
      noInjection(t, admin(['exec', ...flags, ct, '--', 'tiocsti']), `${mode}, normal path`);
    }
    // No fork is possible inside any more: the exec server's fork fails, attach takes its direct path.
    env.ok(t, ['config', 'set', ct, 'limits.processes=1']);
    for (const [mode, flags] of MODES) {
      const r = admin(['exec', ...flags, ct, '--', 'tiocsti']);
      t.regex(r.output, /fork:EAGAIN/, `${mode}: the container is at its process limit`);
      noInjection(t, r, `${mode}, at the limit`);
    }
    env.cli(['delete', '--force', ct]);
  });

  test.serial('the SSH gateway run from the admin terminal: no injection, with and without a pty, normal path and at the limit', async (t) => {
    const key = makeKey(env.root, 'k');
    const cts = TARGETS.flatMap(({ name }) => [name, `${name}l`]);
    env.ok(t, ['gateway', 'user', 'add', 'member', '--key', `${key}.pub`, ...cts.flatMap((c) => ['-c', c])]);
    const log = path.join(env.root, 'gateway.log');
    const stop = path.join(env.root, 'gateway.stop');
    const cfg = { cmd: [process.execPath, cliPath, 'gateway', '--listen', '127.0.0.1:0'], log, stop, wait: 0.3, timeout: 300 };
    const child = spawn('/usr/bin/python3', [harness, JSON.stringify(cfg)], { env: env.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise<Admin>((resolve, reject) =>
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Admin) : reject(new Error(`admin-tty.py exited ${code}`)))),
    );
    t.teardown(() => fs.writeFileSync(stop, ''));
    let port = 0;
    for (let i = 0; i < 400 && !port; i++) {
      await new Promise((r) => setTimeout(r, 50));
      port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '')?.[1] ?? 0);
    }
    t.true(port > 0, 'the gateway listens');
    const knownHosts = path.join(env.root, 'known_hosts');
    for (const ct of cts) {
      for (const tty of [[], ['-tt']]) {
        const r = await runTool('ssh', [...sshOptions({ port }, key, knownHosts), ...tty, `member+${ct}@127.0.0.1`, '--', 'tiocsti'], '');
        t.log(`${ct} ${tty.join('') || 'no pty'}: ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`);
        t.regex(r.stdout, /fork:/, `${ct}: the injector ran`);
      }
    }
    fs.writeFileSync(stop, '');
    const end = await done;
    t.false(end.pending.includes(MARK), `a line was pushed into the terminal the gateway runs on: ${JSON.stringify(end.pending)}`);
  });
}
