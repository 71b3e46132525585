import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { collect, connect, exec, makeKey, runTool, shell, sshOptions, startGatewayProcess, waitFor, type GatewayProcess } from './harness.js';

/**
 * The SSH gateway with real clients (OpenSSH's ssh and ssh2's Client) against busybox containers:
 * commands, exit codes, stdin, ptys and window sizes, signals, key refusal, isolation between
 * users and from the host, 50 concurrent sessions, a deleted container ending only its own
 * session, the session log, throttling, and a host key that survives a restart.
 */
if (requireRoot(test)) {
  const env = new TestEnv('gw');
  let gw: GatewayProcess | undefined;
  const keys: Record<string, string> = {};
  const knownHosts = path.join(env.root, 'known_hosts');
  const ssh = (key: string, login: string, cmd: string[], input?: string, extra: string[] = []) =>
    runTool('ssh', [...sshOptions(gw!, key, knownHosts), ...extra, `${login}@127.0.0.1`, '--', ...cmd], input);

  test.serial.before(async (t) => {
    const launched = await Promise.all(['c1', 'c2', 'c3'].map((n) => env.cliAsync(['launch', 'busybox', n])));
    for (const r of launched) if (r.code !== 0) t.fail(r.stderr);
    for (const k of ['k1', 'k2', 'k3', 'kbad']) keys[k] = makeKey(env.root, k);
    env.ok(t, ['gateway', 'user', 'add', 'member1', '--key', `${keys.k1}.pub`, '-c', 'c1', '-c', 'c3']);
    env.ok(t, ['gateway', 'user', 'add', 'member2', '--key-line', fs.readFileSync(`${keys.k2}.pub`, 'utf8').trim(), '-c', 'c2']);
    gw = await startGatewayProcess(env);
  });
  test.serial.after.always('stop the gateway', async () => {
    await gw?.stop();
  });

  test.serial('ssh runs a command in the first container: output, exit code, stdin', async (t) => {
    const r = await ssh(keys.k1, 'member1', ['hostname; cat /proc/1/comm; read line; echo "got $line"; echo oops >&2; exit 3'], 'hello\n');
    t.is(r.code, 3, r.stderr);
    t.is(r.stdout, 'c1\ninit\ngot hello\n');
    t.regex(r.stderr, /oops/);
    const big = 'x'.repeat(300_000);
    const w = await ssh(keys.k1, 'member1', ['wc -c'], big);
    t.is(w.stdout.trim(), '300000');
  });

  test.serial('member1+c3 picks the second container; ssh2 exec and shell without a pty', async (t) => {
    t.is((await ssh(keys.k1, 'member1+c3', ['hostname'])).stdout, 'c3\n');
    const c = await connect(gw!, 'member1', keys.k1);
    try {
      const r = await collect(await exec(c, 'echo $((6*7)); exit 9'));
      t.is(r.stdout, '42\n');
      t.is(r.code, 9);
      // LANG, LC_* and TZ from the client are taken; anything else is not.
      const envd = await collect(
        await new Promise<import('ssh2').ClientChannel>((res, rej) =>
          c.exec('echo "$LANG|$LC_ALL|${FOO-unset}|$SSH_CONNECTION"', { env: { LANG: 'C.UTF-8', LC_ALL: 'C', FOO: 'bar' } }, (e, ch) => (e ? rej(e) : res(ch))),
        ),
      );
      t.regex(envd.stdout, /^C\.UTF-8\|C\|unset\|127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+\n$/);
      const sh = await shell(c, false);
      const done = collect(sh);
      sh.end('echo in-shell $(hostname)\nexit 5\n');
      const s = await done;
      t.regex(s.stdout, /in-shell c1/);
      t.is(s.code, 5);
    } finally {
      c.end();
    }
  });

  test.serial('a pty from the container devpts, its size, and window changes', async (t) => {
    const r = await ssh(keys.k1, 'member1', ['tty; exit 2'], undefined, ['-tt']);
    t.is(r.code, 2);
    t.regex(r.stdout, /^\/dev\/pts\/\d+\r?\n/);
    const c = await connect(gw!, 'member1', keys.k1);
    try {
      const sh = await shell(c, { rows: 30, cols: 100, term: 'xterm' });
      const done = collect(sh);
      let out = '';
      sh.on('data', (d: Buffer) => (out += d.toString()));
      sh.write('echo T=$TERM; stty size\n');
      await waitFor(() => out, /T=xterm\r?\n30 100/);
      sh.setWindow(40, 120, 0, 0);
      sh.write('stty size\n');
      await waitFor(() => out, /40 120/);
      sh.write('exit 4\n');
      t.is((await done).code, 4);
    } finally {
      c.end();
    }
  });

  test.serial('signals reach the command, with and without a pty', async (t) => {
    const c = await connect(gw!, 'member1', keys.k1);
    try {
      for (const pty of [false, true]) {
        const ch = await exec(c, `trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.1; done`, { pty: pty ? { rows: 24, cols: 80 } : false });
        let out = '';
        ch.on('data', (d: Buffer) => (out += d.toString()));
        const done = collect(ch);
        await waitFor(() => out, /ready/);
        ch.signal('INT');
        const r = await done;
        t.is(r.code, 7, `pty=${pty}`);
        t.regex(out, /got-int/);
      }
    } finally {
      c.end();
    }
  });

  test.serial('a client that goes away leaves nothing running in the container', async (t) => {
    const ps = () => env.cli(['exec', 'c1', '--', 'ps', '-o', 'args']).stdout;
    for (const abrupt of [false, true]) {
      const c = await connect(gw!, 'member1', keys.k1);
      const sh = await shell(c, { rows: 24, cols: 80 });
      sh.write('sleep 1001\n');
      await exec(c, 'sleep 1002');
      await waitFor(ps, /sleep 1001[\s\S]*sleep 1002|sleep 1002[\s\S]*sleep 1001/);
      if (abrupt) c.destroy();
      else c.end();
      await waitFor(() => (/sleep 100[12]/.test(ps()) ? '' : 'gone'), /gone/, 15_000);
      t.pass(`abrupt=${abrupt}`);
    }
  });

  test.serial("a wrong key, an unknown user, and another user's container are refused", async (t) => {
    const wrong = await ssh(keys.kbad, 'member1', ['true']);
    t.is(wrong.code, 255);
    t.regex(wrong.stderr, /Permission denied \(publickey\)/);
    t.is((await ssh(keys.k1, 'root', ['true'])).code, 255);
    t.is((await ssh(keys.k1, 'member2', ['true'])).code, 255, "member1's key is not member2's");
    t.is((await ssh(keys.k1, 'member1+c2', ['true'])).code, 255, "c2 is not member1's");
    t.is((await ssh(keys.k1, 'member1+../c2', ['true'])).code, 255);
    t.is((await ssh(keys.k2, 'member2+c1', ['true'])).code, 255);
    t.is((await ssh(keys.k2, 'member2', ['hostname'])).stdout, 'c2\n');
    await t.throwsAsync(connect(gw!, 'member1', keys.k1, { tryKeyboard: true, privateKey: undefined, password: 'x' }));
    t.regex(gw!.log(), /login refused: container "c2" is not one of this user's/);
  });

  test.serial('nothing reaches the host: no forwarding, no other subsystem, no agent', async (t) => {
    const c = await connect(gw!, 'member1', keys.k1);
    try {
      await t.throwsAsync(new Promise((res, rej) => c.forwardOut('127.0.0.1', 1234, '127.0.0.1', gw!.port, (err, ch) => (err ? rej(err) : res(ch)))));
      await t.throwsAsync(new Promise((res, rej) => c.forwardIn('127.0.0.1', 0, (err) => (err ? rej(err) : res(undefined)))));
      await t.throwsAsync(new Promise((res, rej) => c.openssh_forwardOutStreamLocal('/run/tslxc', (err, ch) => (err ? rej(err) : res(ch)))));
      await t.throwsAsync(new Promise((res, rej) => c.subsys('shell', (err, ch) => (err ? rej(err) : res(ch)))));
      // And the session is inside: the container's own pid namespace and root.
      const r = await collect(await exec(c, 'ls /proc | grep -c "^[0-9]"; cat /etc/hostname 2>/dev/null || hostname'));
      t.true(Number(r.stdout.split('\n')[0]) < 20, r.stdout);
    } finally {
      c.end();
    }
    const fwd = await ssh(keys.k1, 'member1', ['true'], undefined, ['-o', 'ExitOnForwardFailure=yes', '-L', '127.0.0.1:0:127.0.0.1:22']);
    t.not(fwd.code, 0);
  });

  test.serial('users.yaml is re-read at every login: add and remove take effect at once', async (t) => {
    env.ok(t, ['gateway', 'user', 'add', 'member3', '--key', `${keys.k3}.pub`, '-c', 'c2']);
    t.is((await ssh(keys.k3, 'member3', ['hostname'])).stdout, 'c2\n');
    t.regex(env.ok(t, ['gateway', 'user', 'list']), /member3\s+c2\s+SHA256:/);
    const listed = JSON.parse(env.ok(t, ['gateway', 'user', 'list', '--format', 'json'])) as Array<{ name: string }>;
    t.deepEqual(
      listed.map((u) => u.name),
      ['member1', 'member2', 'member3'],
    );
    env.ok(t, ['gateway', 'user', 'remove', 'member3']);
    t.is((await ssh(keys.k3, 'member3', ['hostname'])).code, 255);
    const bad = env.cli(['gateway', 'user', 'add', 'member4', '--key', keys.k3, '-c', 'c2']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /Invalid public key/);
    t.regex(env.cli(['gateway', 'user', 'add', 'member4', '--key', `${keys.k3}.pub`, '-c', 'nope']).stderr, /Container "nope" not found/);
    t.regex(env.cli(['gateway', 'user', 'add', 'Bad/Name', '--key', `${keys.k3}.pub`, '-c', 'c2']).stderr, /Invalid gateway user name/);
    t.regex(env.cli(['gateway', 'user', 'remove', 'member9']).stderr, /not found/);
  });

  test.serial('50 concurrent sessions', async (t) => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const c = await connect(gw!, i % 2 ? 'member1' : 'member2', i % 2 ? keys.k1 : keys.k2);
        try {
          return await collect(await exec(c, `sleep 0.5; echo $((${i} * 2)) $(hostname)`));
        } finally {
          c.end();
        }
      }),
    );
    results.forEach((r, i) => {
      t.is(r.code, 0);
      t.is(r.stdout, `${i * 2} ${i % 2 ? 'c1' : 'c2'}\n`);
    });
    t.log(`50 concurrent sessions (0.5 s each) in ${Date.now() - started} ms`);
  });

  test.serial('every session is logged: who, source, container, start, end, exit', async (t) => {
    const { readSessionLog, sessionsLogFile } = await import('../../../lib/gateway/log.js');
    const records = readSessionLog(sessionsLogFile(env.paths));
    t.true(records.length >= 50);
    const first = records.find((r) => r.kind === 'exec' && r.exit === 3);
    t.truthy(first);
    t.is(first!.user, 'member1');
    t.is(first!.container, 'c1');
    t.regex(first!.source, /^127\.0\.0\.1:\d+$/);
    t.true(Date.parse(first!.end) >= Date.parse(first!.start));
    t.true(records.some((r) => r.kind === 'shell' && r.pty && r.exit === 4));
    t.is(fs.statSync(sessionsLogFile(env.paths)).mode & 0o777, 0o600);
  });

  test.serial('a stopped container says so; deleting a container ends only its own session', async (t) => {
    env.ok(t, ['stop', 'c2', '--force']);
    const r = await ssh(keys.k2, 'member2', ['true']);
    t.is(r.code, 1);
    t.regex(r.stderr, /Container "c2" is not running/);

    const c3 = await connect(gw!, 'member1+c3', keys.k1);
    const c1 = await connect(gw!, 'member1', keys.k1);
    try {
      const doomed = await shell(c3, { rows: 24, cols: 80 });
      let out = '';
      doomed.on('data', (d: Buffer) => (out += d.toString()));
      const doomedDone = collect(doomed);
      doomed.write('echo started; sleep 1000\n');
      await waitFor(() => out, /started/);
      const plain = await exec(c3, 'echo up; sleep 1000');
      const plainDone = collect(plain);
      const survivor = collect(await exec(c1, 'sleep 3; echo survived'));
      env.ok(t, ['delete', '--force', 'c3']);
      const [d, p, s] = await Promise.all([doomedDone, plainDone, survivor]);
      t.not(d.code, 0);
      t.regex(d.stderr, /container "c3" stopped; this session ended/);
      t.not(p.code, 0);
      t.regex(p.stderr, /container "c3" stopped/);
      t.is(s.code, 0);
      t.is(s.stdout, 'survived\n');
    } finally {
      c1.end();
      c3.end();
    }
    t.is((await ssh(keys.k1, 'member1', ['echo still-serving'])).stdout, 'still-serving\n');
  });

  test.serial('the host key persists across a restart; SIGTERM ends the gateway cleanly', async (t) => {
    const { hostKeyFile } = await import('../../../lib/gateway/hostkey.js');
    const before = fs.readFileSync(hostKeyFile(env.paths), 'utf8');
    t.is(fs.statSync(hostKeyFile(env.paths)).mode & 0o777, 0o600);
    // A session open at SIGTERM is hung up: its command gets SIGHUP, the client sees the end.
    const c = await connect(gw!, 'member1', keys.k1);
    const ch = await exec(c, `trap 'echo hup >&2; exit 9' HUP; echo ready; while :; do sleep 0.1; done`);
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString()));
    const open = collect(ch);
    await waitFor(() => out, /ready/);
    t.is(await gw!.stop(), 0);
    const hung = await open;
    t.regex(hung.stderr, /hup/);
    c.end();
    t.regex(gw!.log(), /gateway stopped/);
    gw = await startGatewayProcess(env);
    t.is(fs.readFileSync(hostKeyFile(env.paths), 'utf8'), before);
    const r = await runTool('ssh', [...sshOptions(gw, keys.k1, knownHosts, 'yes'), 'member1@127.0.0.1', '--', 'echo same-key']);
    t.is(r.stdout, 'same-key\n', r.stderr);
  });

  test.serial('repeated failures from one address are slowed, then refused', async (t) => {
    const strict = await startGatewayProcess(env, ['--ban-after', '3', '--ban-time', '60']);
    try {
      const opts = (key: string) => [...sshOptions(strict, key, knownHosts), 'member1@127.0.0.1', '--', 'echo in'];
      t.is((await runTool('ssh', opts(keys.k1))).stdout, 'in\n');
      for (let i = 0; i < 3; i++) t.is((await runTool('ssh', opts(keys.kbad))).code, 255);
      const refused = await runTool('ssh', opts(keys.k1));
      t.is(refused.code, 255);
      t.notRegex(refused.stdout, /in/);
      t.regex(strict.log(), /127\.0\.0\.1 refused for 60 s/);
      // The other gateway (another process) is not affected, and nor is a session already open.
      t.is((await ssh(keys.k1, 'member1', ['echo ok'])).stdout, 'ok\n');
    } finally {
      await strict.stop();
    }
  });

  leftoverHooks(test, env);
}
