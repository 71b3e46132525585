import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cliPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { ipv4Of } from '../../helpers/instances.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { freePort as freePortOn, teardownNetworks, uniqueBridge, useNetworkProfile } from '../../helpers/network.js';

/**
 * `tslxc ssh` and `tslxc ssh-key` against a real Debian container's sshd on a bridge of the test's
 * own (ipv4.nat=false): traffic only goes between the host and that container's address. Both
 * clients are used: tslxc's (ssh2) and OpenSSH's `ssh` with tslxc's private key.
 */
if (requireRoot(test)) {
  const env = new TestEnv('ssh');
  const br = uniqueBridge();
  let addr = '';
  let knownHosts = '';
  let ownKey = '';

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const oneLine = (t: ExecutionContext, r: { code: number; stderr: string }, code: number, re: RegExp) => {
    t.is(r.code, code, r.stderr);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re);
  };
  /** OpenSSH's client, with no user config, only to the container's address on the test bridge. */
  const openssh = (key: string, user: string, args: string[], input?: string) => {
    const r = spawnSync(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-i',
        key,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'StrictHostKeyChecking=accept-new',
        '-o',
        'BatchMode=yes',
        '-o',
        'ConnectTimeout=10',
        '-o',
        'LogLevel=ERROR',
        `${user}@${addr}`,
        ...args,
      ],
      { encoding: 'utf8', input: input ?? '', timeout: 60_000 },
    );
    return { code: r.status ?? 255, stdout: r.stdout, stderr: r.stderr };
  };
  /** A command line run under script(1), so tslxc sees a terminal. */
  const underScript = (line: string) => spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', env: env.env, input: '', timeout: 60_000 });
  const cliLine = (args: string) => `${process.execPath} ${cliPath} ${args}`;
  const freePort = () => freePortOn('127.0.0.1');
  const readAll = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let data = '';
      s.setTimeout(5000, () => s.destroy(new Error('timeout')));
      s.on('data', (d) => (data += d));
      s.on('error', reject);
      s.on('close', () => resolve(data));
    });

  test.before(async () => {
    const c = env.cli(['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    if (c.code !== 0) throw new Error(c.stderr);
    await useNetworkProfile(env, br);
    fs.writeFileSync(path.join(env.paths.stateDir, 'profiles', 'bare.yaml'), 'description: no network\nconfig: {}\ndevices: {}\n');
    const l = env.cli(['launch', 'debian', 'c1']);
    if (l.code !== 0) throw new Error(l.stderr);
    const w = env.cli(['wait', 'c1', '--ip', '--timeout', '60']);
    if (w.code !== 0) throw new Error(w.stderr);
    addr = ipv4Of(JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((x: { name: string }) => x.name === 'c1'))[0];
    knownHosts = path.join(env.root, 'openssh_known_hosts');
    ownKey = env.cli(['ssh-key', 'own', '--path']).stdout.trim();
  });
  test.serial.after.always('containers and the network', async () => {
    await env.deleteContainers();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial("create put tslxc's key in root's authorized_keys (0700 dir, 0600 file), made with the keypair", (t) => {
    t.is(fs.statSync(ownKey).mode & 0o777, 0o600);
    const own = env.ok(t, ['ssh-key', 'own']).trim();
    t.regex(own, /^ssh-ed25519 \S+ tslxc@/);
    t.is(env.ok(t, ['exec', 'c1', '--', 'stat', '-c', '%a %U', '/root/.ssh', '/root/.ssh/authorized_keys']), '700 root\n600 root\n');
    t.true(env.ok(t, ['exec', 'c1', '--', 'cat', '/root/.ssh/authorized_keys']).includes(own.split(' ')[1]));
  });

  test.serial('commands: output, exit codes, signals, stdin; the host key is learnt once', (t) => {
    const first = env.cli(['ssh', 'c1', '--', 'hostname']);
    t.is(first.code, 0, first.stderr);
    t.is(first.stdout, 'c1\n');
    t.regex(first.stderr, /Learnt the host key of "c1" \(.*\): ssh-ed25519 SHA256:/);
    t.regex(
      fs.readFileSync(path.join(env.paths.stateDir, 'ssh', 'known_hosts'), 'utf8'),
      new RegExp(`^${addr.replace(/\./g, '\\.')} ssh-ed25519 \\S+ name=c1 created=`),
    );
    const again = env.cli(['ssh', 'c1', '--', 'true']);
    t.is(again.code, 0);
    t.is(again.stderr, '');
    t.is(env.cli(['ssh', 'c1', '--', 'sh', '-c', 'exit 3']).code, 3);
    t.is(env.cli(['ssh', 'c1', '--', 'exit 42']).code, 42);
    t.is(env.cli(['ssh', 'c1', '--', 'kill -TERM $$']).code, 143);
    const piped = env.cli(['ssh', 'c1', '--', 'cat'], { input: 'hi\nthere\n' });
    t.is(piped.stdout, 'hi\nthere\n');
    const counted = env.cli(['ssh', 'c1', '--', 'wc -c'], { input: 'x'.repeat(300_000) });
    t.is(counted.stdout.trim(), '300000');
    const both = env.cli(['ssh', 'c1', '--', 'echo out; echo err >&2']);
    t.is(both.stdout, 'out\n');
    t.is(both.stderr, 'err\n');
    t.is(env.cli(['ssh', 'c1', '--', 'printf', '%s|', 'a b', "it's"]).stdout, "a b|it's|");
  });

  test.serial('a pty: -t gives one, -T and pipes do not; the window size follows the terminal', (t) => {
    const r = underScript(cliLine('ssh -t c1 -- tty'));
    t.is(r.status, 0, r.stderr + r.stdout);
    t.regex(r.stdout, /\/dev\/pts\/\d+/);
    t.is(env.cli(['ssh', '-T', 'c1', '--', 'tty']).stdout.trim(), 'not a tty');
    t.is(env.cli(['ssh', 'c1', '--', 'tty']).stdout.trim(), 'not a tty');
    // Without a terminal on our side -t still asks for one (as ssh -tt).
    t.regex(env.cli(['ssh', '-t', 'c1', '--', 'tty']).stdout, /\/dev\/pts\/\d+/);
    // The size at start, then a resize while the command runs (SIGWINCH -> window-change). The
    // terminal is resized only once the command has printed its first size (a marker file inside),
    // and the command waits for the change: no race with a slow start on a loaded host.
    env.ok(t, ['exec', 'c1', '--', 'rm', '-f', '/tmp/sized']);
    const remote =
      'stty size; touch /tmp/sized; i=0; while [ \\"\\$(stty size)\\" != \\"40 120\\" ] && [ \\$i -lt 300 ]; do sleep 0.1; i=\\$((i+1)); done; stty size';
    const resizeWhenSized = `until ${cliLine('exec c1 -- test -e /tmp/sized')}; do sleep 0.2; done; stty rows 40 cols 120 </dev/tty`;
    const resized = underScript(`sh -c 'stty rows 30 cols 100; (${resizeWhenSized}) & ${cliLine(`ssh -t c1 -- "${remote}"`)}'`);
    t.is(resized.status, 0, resized.stdout);
    // (script may pass a NUL between the lines: the terminal's padding after the resize)
    t.regex(resized.stdout, /30 100[\s\0]+40 120/);
    // An interactive shell on a terminal: exit code of the shell comes back.
    const shell = spawnSync('script', ['-qec', cliLine('ssh c1'), '/dev/null'], {
      encoding: 'utf8',
      env: env.env,
      input: 'echo in-$((6*7))\nexit 7\n',
      timeout: 60_000,
    });
    t.regex(shell.stdout, /in-42/);
    t.is(shell.status, 7, shell.stdout);
  });

  test.serial('-L forwards reach a port that only listens inside the container', async (t) => {
    env.ok(t, [
      'exec',
      'c1',
      '--',
      'systemd-run',
      '--unit',
      'fwtest',
      'systemd-socket-activate',
      '-l',
      '127.0.0.1:8123',
      '-a',
      '--inetd',
      '/bin/echo',
      'hello-from-inside',
    ]);
    const [p1, p2] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [cliPath, 'ssh', 'c1', '-N', '-L', `${p1}:127.0.0.1:8123`, '-L', `127.0.0.1:${p2}:localhost:22`], {
      env: env.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      let got = '';
      for (let i = 0; i < 100 && !got; i++) {
        got = await readAll(p1).catch(() => '');
        if (!got) await new Promise((r) => setTimeout(r, 100));
      }
      t.is(got, 'hello-from-inside\n', stderr);
      t.is(await readAll(p1), 'hello-from-inside\n', 'a second connection');
      const banner = await new Promise<string>((resolve, reject) => {
        const s = net.connect(p2, '127.0.0.1');
        s.once('data', (d) => {
          resolve(String(d));
          s.destroy();
        });
        s.on('error', reject);
      });
      t.regex(banner, /^SSH-2\.0-OpenSSH/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    }
    t.is(child.exitCode, 0, stderr);
    // The ports are closed with the command.
    await t.throwsAsync(readAll(p1));
    const used = env.cli(['ssh', 'c1', '-L', `${p1}:127.0.0.1:8123`, '-L', `${p1}:127.0.0.1:8123`, '--', 'true']);
    oneLine(t, used, 255, /Cannot forward .*the port is in use/);
    oneLine(t, env.cli(['ssh', 'c1', '-L', 'nonsense', '--', 'true']), 1, /Invalid forward "nonsense"/);
  });

  test.serial("OpenSSH logs in with tslxc's key: commands, exit codes, stdin", (t) => {
    const r = openssh(ownKey, 'root', ['hostname']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'c1\n');
    t.is(openssh(ownKey, 'root', ['exit 5']).code, 5);
    t.is(openssh(ownKey, 'root', ['cat'], 'from-openssh\n').stdout, 'from-openssh\n');
    // tslxc's known_hosts is in OpenSSH's format: strict checking against it passes.
    const strict = spawnSync(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-i',
        ownKey,
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `UserKnownHostsFile=${path.join(env.paths.stateDir, 'ssh', 'known_hosts')}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        `root@${addr}`,
        'true',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    t.is(strict.status, 0, strict.stderr);
  });

  test.serial('ssh-key add for a user: checked, owned by the user, and that user logs in', (t) => {
    env.ok(t, ['exec', 'c1', '--', 'useradd', '--create-home', '--shell', '/bin/bash', 'dev']);
    const key = path.join(env.root, 'dev_key');
    t.is(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dev@laptop', '-f', key]).status, 0);
    const added = env.ok(t, ['ssh-key', 'add', 'c1', '--user', 'dev', `${key}.pub`]);
    t.regex(added, /^Added: ssh-ed25519 SHA256:\S+ dev@laptop\n$/);
    t.regex(env.ok(t, ['ssh-key', 'add', 'c1', '--user', 'dev', `${key}.pub`]), /^Already there/);
    t.is(env.ok(t, ['exec', 'c1', '--', 'stat', '-c', '%a %U:%G', '/home/dev/.ssh', '/home/dev/.ssh/authorized_keys']), '700 dev:dev\n600 dev:dev\n');
    const list = JSON.parse(env.ok(t, ['ssh-key', 'list', 'c1', '--user', 'dev', '--format', 'json']));
    t.is(list.length, 1);
    t.is(list[0].comment, 'dev@laptop');
    const r = openssh(key, 'dev', ['id -un; pwd']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'dev\n/home/dev\n');
    // tslxc's own key is root's only: as dev, tslxc ssh is refused with a hint.
    oneLine(
      t,
      env.cli(['ssh', 'c1', '--user', 'dev', '--', 'true']),
      255,
      /Cannot log in to "c1" .* as dev: sshd refused tslxc's key \(authorize it: tslxc ssh-key add c1 --user dev/,
    );
    // Refused: a private key, garbage, an unknown user, a missing file.
    oneLine(t, env.cli(['ssh-key', 'add', 'c1', '--user', 'dev', key]), 1, /Refusing .*private key/);
    fs.writeFileSync(`${key}.bad`, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbroken dev\n');
    oneLine(t, env.cli(['ssh-key', 'add', 'c1', '--user', 'dev', `${key}.bad`]), 1, /Invalid public key in .*line 1/);
    oneLine(t, env.cli(['ssh-key', 'add', 'c1', '--user', 'nobody-here', `${key}.pub`]), 1, /No user "nobody-here" in "c1"/);
    oneLine(t, env.cli(['ssh-key', 'add', 'c1', '--user', 'dev', `${key}.missing`]), 1, /Cannot read .*no such file/);
    // remove by fingerprint
    env.ok(t, ['ssh-key', 'remove', 'c1', '--user', 'dev', list[0].fingerprint]);
    t.is(JSON.parse(env.ok(t, ['ssh-key', 'list', 'c1', '--user', 'dev', '--format', 'json'])).length, 0);
    t.not(openssh(key, 'dev', ['true']).code, 0);
  });

  test.serial('a symlink a user plants in their home cannot redirect ssh-key add', (t) => {
    const key = path.join(env.root, 'evil_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'evil', '-f', key]);
    env.ok(t, ['exec', 'c1', '--user', 'dev', '--', 'sh', '-c', 'rm -rf ~/.ssh && ln -s /root/.ssh ~/.ssh']);
    const r = env.cli(['ssh-key', 'add', 'c1', '--user', 'dev', `${key}.pub`]);
    oneLine(t, r, 1, /Permission denied/);
    t.false(env.ok(t, ['exec', 'c1', '--', 'cat', '/root/.ssh/authorized_keys']).includes('evil'));
    t.is(env.ok(t, ['exec', 'c1', '--', 'stat', '-c', '%U', '/root/.ssh', '/root/.ssh/authorized_keys']), 'root\nroot\n');
    env.ok(t, ['exec', 'c1', '--user', 'dev', '--', 'rm', '/home/dev/.ssh']);
  });

  test.serial('ssh-key on a stopped container, and the clear lines for stopped, no address, no sshd', (t) => {
    env.ok(t, ['create', 'debian', 'c2']);
    const key = path.join(env.root, 'dev_key');
    env.ok(t, ['ssh-key', 'add', 'c2', `${key}.pub`]);
    t.is(JSON.parse(env.ok(t, ['ssh-key', 'list', 'c2', '--format', 'json'])).length, 2);
    oneLine(t, env.cli(['ssh', 'c2', '--', 'true']), 255, /Container "c2" is not running \(start it with "tslxc start c2"\)/);
    oneLine(t, env.cli(['ssh', 'nope', '--', 'true']), 255, /Container "nope" not found/);
    // busybox: no sshd in the image, so no key at create; and without a nic, no address.
    env.ok(t, ['launch', 'busybox', 'b1', '-p', 'bare']);
    t.is(env.cli(['exec', 'b1', '--', 'test', '-e', '/root/.ssh/authorized_keys']).code, 1);
    oneLine(t, env.cli(['ssh', 'b1', '--', 'true']), 255, /Container "b1" has no IPv4 address: it has no nic/);
    // sshd not answering (nothing on that port), within --timeout.
    const started = Date.now();
    oneLine(t, env.cli(['ssh', 'c1', '--port', '2222', '--timeout', '2', '--', 'true']), 255, /Cannot connect to "c1" \(.*:2222\): nothing listens there/);
    t.true(Date.now() - started < 15_000);
    env.ok(t, ['delete', '--force', 'b1', 'c2']);
  });

  test.serial('dir and btrfs pools too: the key at create, ssh-key add on the stopped container', (t) => {
    const key = path.join(env.root, 'dev_key');
    for (const driver of ['dir', 'btrfs']) {
      env.ok(t, ['storage', 'create', `p${driver}`, driver]);
      env.ok(t, ['create', 'debian', `s${driver}`, '--storage', `p${driver}`]);
      const keys = () => JSON.parse(env.ok(t, ['ssh-key', 'list', `s${driver}`, '--format', 'json'])) as Array<{ comment: string }>;
      t.deepEqual(
        keys().map((k) => k.comment.split('@')[0]),
        ['tslxc'],
        driver,
      );
      env.ok(t, ['ssh-key', 'add', `s${driver}`, `${key}.pub`]);
      t.deepEqual(
        keys().map((k) => k.comment.split('@')[0]),
        ['tslxc', 'dev'],
        driver,
      );
      env.ok(t, ['delete', `s${driver}`]);
      env.ok(t, ['storage', 'delete', `p${driver}`]);
    }
  });

  test.serial('a changed host key is refused with one line, until it is forgotten', (t) => {
    env.ok(t, ['exec', 'c1', '--', 'sh', '-c', 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh']);
    const r = env.cli(['ssh', 'c1', '--', 'true']);
    oneLine(
      t,
      r,
      255,
      /Host key of "c1" \(.*\) has changed: it now offers ssh-ed25519 SHA256:\S+, tslxc knows ssh-ed25519 SHA256:\S+; .*"tslxc ssh c1 --forget-host-key"/,
    );
    t.is(r.stdout, '');
    const f = env.cli(['ssh', 'c1', '--forget-host-key', '--', 'echo', 'ok']);
    t.is(f.code, 0, f.stderr);
    t.is(f.stdout, 'ok\n');
    t.regex(f.stderr, /Forgot the host key of "c1"[\s\S]*Learnt the host key/);
    t.is(env.cli(['ssh', 'c1', '--', 'true']).code, 0);
  });

  test.serial('deleting a container forgets its host key', (t) => {
    const file = path.join(env.paths.stateDir, 'ssh', 'known_hosts');
    env.ok(t, ['copy', 'c1', 'gone1']);
    env.ok(t, ['start', 'gone1']);
    const r = env.cli(['ssh', 'gone1', '--timeout', '60', '--', 'true']);
    t.is(r.code, 0, r.stderr);
    t.regex(fs.readFileSync(file, 'utf8'), / name=gone1 /);
    env.ok(t, ['delete', '--force', 'gone1']);
    t.notRegex(fs.readFileSync(file, 'utf8'), / name=gone1 /);
    t.regex(fs.readFileSync(file, 'utf8'), / name=c1 /, "the other containers' keys stay");
  });

  test.serial('timing: tslxc ssh c1 -- true against OpenSSH ssh ... true (medians of 20, interleaved)', (t) => {
    // The host keys were regenerated above: OpenSSH learns them afresh.
    fs.rmSync(knownHosts, { force: true });
    const timed = (fn: () => { code: number; stderr: string }) => {
      const s = process.hrtime.bigint();
      const r = fn();
      t.is(r.code, 0, r.stderr);
      return Number(process.hrtime.bigint() - s) / 1e6;
    };
    const ours: number[] = [];
    const theirs: number[] = [];
    const execs: number[] = [];
    for (let i = 0; i < 20; i++) {
      ours.push(timed(() => env.cli(['ssh', 'c1', '--', 'true'])));
      theirs.push(timed(() => openssh(ownKey, 'root', ['true'])));
      execs.push(timed(() => env.cli(['exec', 'c1', '--', 'true'])));
    }
    t.log(
      `tslxc ssh c1 -- true: median ${median(ours).toFixed(0)} ms; OpenSSH ssh root@c1 true: median ${median(theirs).toFixed(0)} ms; tslxc exec c1 -- true: median ${median(execs).toFixed(0)} ms`,
    );
  });
}
