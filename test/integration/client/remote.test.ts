import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { cliPath, launcherPath, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { ApiServer, run } from '../../helpers/api.js';

/**
 * The CLI as a client of `tslxc serve` over HTTPS: `remote add` (token, address + password),
 * `remote list|switch|rename|remove`, and the container verbs on "REMOTE:NAME" with the output of
 * the local ones; a client without root and without a local state.
 */
/** Runs argv[1..] on a pty of 30x100 rows and columns, resized to 40x120 once it printed a line; prints its output. */
const RESIZE = `import fcntl, os, pty, struct, sys, termios, time, select
# argv: launcher args...; runs it on a pty of 30x100, then resizes to 40x120 after 1.5 s.
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
out = b''
start = time.time()
resized = False
while True:
    if not resized and b'\\n' in out:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
        resized = True
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    if time.time() - start > 60:
        break
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** Runs argv[1..] on a pty, types a line that prints a marker and exits 3; prints its output and passes its exit code. */
const TYPE = `import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os.write(fd, b'echo "marker-$((6*7)) $0 $HOME"; exit 3\\n')
out = b''
start = time.time()
while time.time() - start < 60:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;

if (requireRoot(test)) {
  const env = new TestEnv('client');
  let server: ApiServer;

  const token = (name: string) =>
    env
      .ok(
        {
          fail: (m: string) => {
            throw new Error(m);
          },
        } as never,
        ['config', 'trust', 'add', name],
      )
      .trim()
      .split('\n')
      .pop()!;
  const cli = (args: string[], input?: string) => env.cli(args, { input });

  test.serial.before(async () => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']);
  });
  test.serial.after.always('stop the server', async () => {
    await server?.stop();
  });
  leftoverHooks(test, env);

  test.serial('remote add NAME TOKEN; list shows its protocol; an unknown certificate needs --accept-certificate', (t) => {
    const add = cli(['remote', 'add', 's', token('me')]);
    t.is(add.code, 0, add.stderr);
    t.regex(add.stdout, /Remote s added: https:\/\/127\.0\.0\.1:\d+/);
    const list = JSON.parse(env.ok(t, ['remote', 'list', '--format', 'json'])) as Array<{ name: string; protocol: string; url: string }>;
    t.like(
      list.find((r) => r.name === 's'),
      { protocol: 'lxd', url: `https://${server.httpsAddresses[0]}` },
    );
    t.like(
      list.find((r) => r.name === 'local'),
      { protocol: 'tslxc' },
    );
    t.like(
      list.find((r) => r.name === 'images'),
      { protocol: 'simplestreams' },
    );
    const conf = env.env.TSLXC_CONF!;
    t.true(fs.existsSync(path.join(conf, 'client.crt')));
    t.is(fs.statSync(path.join(conf, 'client.key')).mode & 0o777, 0o600);

    const url = `https://${server.httpsAddresses[0]}`;
    const unknown = cli(['remote', 'add', 'u', url]);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /not known: its fingerprint is [0-9a-f]{64} .*--accept-certificate/);
    // Already trusted: --accept-certificate alone is enough.
    t.is(cli(['remote', 'add', 'u', url, '--accept-certificate']).code, 0);
    // Used: its TLS session and its name cache are written; removed: both go with the name.
    env.ok(t, ['list', 'u:']);
    const leftovers = [path.join(conf, 'sessions', 'u.json'), path.join(conf, 'cache', 'u.instances')];
    t.deepEqual(
      leftovers.filter((f) => fs.existsSync(f)),
      leftovers,
    );
    t.is(cli(['remote', 'remove', 'u']).code, 0);
    t.deepEqual(
      leftovers.filter((f) => fs.existsSync(f)),
      [],
      'remote remove forgets the TLS session and the cache',
    );
    t.is(cli(['remote', 'add', 's', token('again')]).code, 1);
  });

  test.serial('a second client is trusted with --password TOKEN; a wrong one is refused, nothing is written', (t) => {
    const other = { ...env.env, TSLXC_CONF: path.join(env.root, 'client2') };
    const url = `https://${server.httpsAddresses[0]}`;
    const bad = spawnSync(launcherPath, ['remote', 'add', 'p', url, '--accept-certificate', '--password', 'nope'], { env: other, encoding: 'utf8' });
    t.is(bad.status, 1);
    t.regex(bad.stderr, /^Error: Remote "p"/);
    t.false(fs.existsSync(path.join(other.TSLXC_CONF, 'remotes.json')));
    const ok = spawnSync(launcherPath, ['remote', 'add', 'p', url, '--accept-certificate', '--password', token('pw')], { env: other, encoding: 'utf8' });
    t.is(ok.status, 0, ok.stderr);
    const q = spawnSync(launcherPath, ['list', 'p:', '--format', 'csv'], { env: other, encoding: 'utf8' });
    t.is(q.status, 0, q.stderr);
  });

  test.serial('launch, list, exec (exit code, stdin, stderr, pty, resize), info on REMOTE:NAME', async (t) => {
    t.regex(env.ok(t, ['launch', 'busybox', 's:c1']), /^Launched c1$/m);
    t.regex(env.ok(t, ['list', 's:']), /c1\s+RUNNING/);
    // json: the API's objects, which the local list prints too.
    const remote = JSON.parse(env.ok(t, ['list', 's:', '--format', 'json'])) as Array<{ name: string; status: string }>;
    const local = JSON.parse(env.ok(t, ['list', '--format', 'json'])) as Array<{ name: string; status: string }>;
    t.deepEqual(
      remote.map((r) => [r.name, r.status]),
      local.map((r) => [r.name, r.status]),
    );
    t.deepEqual(Object.keys(remote[0]!).sort(), Object.keys(local[0]!).sort());
    t.is(env.ok(t, ['list', 's:c', '--format', 'csv']).split('\n')[1]!.split(',')[0], 'c1');
    t.is(cli(['exec', 's:c1', '--', 'sh', '-c', 'exit 7']).code, 7);
    // The server's TLS session, for the next command to resume: the user's alone, as client.key.
    const session = path.join(env.env.TSLXC_CONF!, 'sessions', 's.json');
    t.is(fs.statSync(session).mode & 0o777, 0o600);
    t.is(fs.statSync(path.dirname(session)).mode & 0o777, 0o700);
    const cat = cli(['exec', 's:c1', '--', 'cat'], 'from stdin\n');
    t.is(cat.stdout, 'from stdin\n');
    const both = cli(['exec', 's:c1', '--', 'sh', '-c', 'echo out; echo err >&2']);
    t.is(both.stdout, 'out\n');
    t.is(both.stderr, 'err\n');
    const pty = cli(['exec', '-t', 's:c1', '--', 'sh', '-c', 'tty; stty size']);
    t.is(pty.code, 0, pty.stderr);
    t.regex(pty.stdout, /^\/dev\/pts\/\d+\r?\n24 80\r?\n$/);
    // On a terminal: its size at the start, and a resize while the command runs (control socket).
    const sized = await run('/usr/bin/python3', ['-c', RESIZE, launcherPath, 'exec', 's:c1', '--', 'sh', '-c', 'stty size; sleep 4; stty size'], {
      env: env.env,
    });
    t.is(sized.code, 0, sized.stdout);
    // Raw as `lxc exec -t` makes it: the remote pty's "\r\n" reaches the terminal as it is, not as "\r\r\n".
    t.regex(sized.stdout, /^30 100\r\n40 120\r\n$/);
    t.is(cli(['exec', 's:c1', '--env', 'A=b', '--cwd', '/tmp', '--', 'sh', '-c', 'echo $A $PWD']).stdout, 'b /tmp\n');
    const info = env.ok(t, ['info', 's:c1']);
    t.regex(info, /^Name: c1$/m);
    t.regex(info, /^Status: RUNNING$/m);
    t.regex(info, /^PID: \d+$/m);
    t.is(JSON.parse(env.ok(t, ['info', 's:c1', '--format', 'json'])).name, 'c1');
    t.is(env.ok(t, ['console', 's:c1', '--show-log']), env.ok(t, ['console', 'c1', '--show-log']));
    t.regex(cli(['console', 's:c1']).stderr, /not supported yet.*--show-log/);
    const missing = cli(['exec', 's:nope', '--', 'true']);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /^Error: Remote "s": .*not found/i);
  });

  test.serial('list and info on REMOTE: print what the local ones print, running, created and stopped', (t) => {
    // Started comes from /proc's ticks (10 ms steps) and Uptime from the clock of each call.
    const norm = (text: string) => text.replace(/^(Started|Uptime): .*$/gm, '$1: -');
    env.ok(t, ['create', 'busybox', 's:c2', '--config', 'limits.memory=64MiB']);
    try {
      t.is(env.ok(t, ['list', 's:']), env.ok(t, ['list']));
      t.regex(env.ok(t, ['list', 's:']), /^c2\s+CREATED\s+busybox\s*$/m);
      for (const name of ['c1', 'c2']) {
        const local = env.ok(t, ['info', name]);
        t.is(norm(env.ok(t, ['info', `s:${name}`])), norm(local), name);
      }
      const running = env.ok(t, ['info', 's:c1']);
      for (const line of ['Monitor PID', 'Started', 'Uptime', 'Disk', 'Memory', 'Processes', 'Limits', 'lxcfs'])
        t.regex(running, new RegExp(`^${line}: .+$`, 'm'));
      t.regex(env.ok(t, ['info', 's:c2']), /^Limits: limits\.memory=64MiB \(local\)$/m);
      env.ok(t, ['start', 's:c2']);
      env.ok(t, ['stop', 's:c2', '--force']);
      const stopped = env.ok(t, ['info', 's:c2']);
      t.regex(stopped, /^Status: STOPPED$/m);
      t.regex(stopped, /^Last exit: .+$/m);
      t.is(norm(stopped), norm(env.ok(t, ['info', 'c2'])));
    } finally {
      env.cli(['delete', '--force', 's:c2']);
    }
  });

  test.serial('completion offers REMOTE: among the names, and the names a list of it saw (native and node alike)', (t) => {
    const node = (args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { env: env.env, encoding: 'utf8' }).stdout;
    for (const complete of [(a: string[]) => env.cli(a).stdout, node]) {
      t.true(complete(['__complete', 'exec', '']).split('\n').includes('s:'));
      t.deepEqual(complete(['__complete', 'exec', 's']).split('\n').filter(Boolean), ['s:']);
    }
    env.ok(t, ['list', 's:']);
    for (const complete of [(a: string[]) => env.cli(a).stdout, node]) {
      t.is(complete(['__complete', 'exec', 's:']), 's:c1\n');
      t.is(complete(['__complete', 'start', 's:']), '');
      t.is(complete(['__complete', 'info', 's:c']), 's:c1\n');
    }
  });

  test.serial('exec --user and --group by name on a remote, as locally', (t) => {
    t.is(cli(['exec', 's:c1', '--user', 'nobody', '--', 'id', '-u']).stdout, '65534\n');
    t.is(
      cli(['exec', 's:c1', '--user', 'nobody', '--', 'sh', '-c', 'echo $HOME']).stdout,
      cli(['exec', 'c1', '--user', 'nobody', '--', 'sh', '-c', 'echo $HOME']).stdout,
    );
    t.is(cli(['exec', 's:c1', '--group', 'nogroup', '--', 'id', '-g']).stdout, '65534\n');
    t.is(cli(['exec', 's:c1', '--user', '65534', '--', 'id', '-u']).stdout, '65534\n');
    for (const [opt, v, file] of [
      ['--user', 'nosuch', 'passwd'],
      ['--group', 'nosuch', 'group'],
    ]) {
      const local = cli(['exec', 'c1', opt!, v!, '--', 'true']);
      const remote = cli(['exec', 's:c1', opt!, v!, '--', 'true']);
      t.is(remote.code, local.code, opt);
      t.is(remote.code, 125);
      t.regex(remote.stderr, new RegExp(`^Error: ${opt!.slice(2)} nosuch: not found in the container's /etc/${file}\n$`));
    }
  });

  test.serial('shell REMOTE:C: a login shell on a terminal, its exit code passed through', async (t) => {
    for (const name of ['s:c1', 'c1']) {
      const r = await run('/usr/bin/python3', ['-c', TYPE, launcherPath, 'shell', name], { env: env.env });
      t.is(r.code, 3, r.stdout);
      // A login shell: $0 starts with "-", and root's home.
      t.regex(r.stdout, /^marker-42 -\S*sh \/root\r?$/m, name);
    }
  });

  test.serial('file push and pull, config set|show|unset, snapshots on a remote', (t) => {
    const f = path.join(env.root, 'pushed');
    fs.writeFileSync(f, 'payload\n', { mode: 0o640 });
    env.ok(t, ['file', 'push', f, 's:c1/tmp/a/b/pushed', '-p']);
    t.is(cli(['exec', 's:c1', '--', 'cat', '/tmp/a/b/pushed']).stdout, 'payload\n');
    t.is(cli(['exec', 's:c1', '--', 'stat', '-c', '%a', '/tmp/a/b/pushed']).stdout.trim(), '640');
    env.ok(t, ['file', 'push', '-', 's:c1/tmp/stdin.txt'], { input: 'piped' });
    const out = path.join(env.root, 'pulled');
    env.ok(t, ['file', 'pull', 's:c1/tmp/stdin.txt', out]);
    t.is(fs.readFileSync(out, 'utf8'), 'piped');

    env.ok(t, ['config', 'set', 's:c1', 'user.note=hello']);
    t.regex(env.ok(t, ['config', 'show', 's:c1']), /user\.note: hello/);
    t.regex(env.ok(t, ['config', 'show', 'c1']), /user\.note: hello/);
    env.ok(t, ['config', 'unset', 's:c1', 'user.note']);
    t.notRegex(env.ok(t, ['config', 'show', 's:c1']), /user\.note/);

    t.regex(env.ok(t, ['snapshot', 'create', 's:c1', 'first']), /^Snapshot c1\/first created$/m);
    t.regex(env.ok(t, ['snapshot', 'create', 's:c1']), /^Snapshot c1\/snap0 created$/m);
    t.deepEqual(
      env
        .ok(t, ['snapshot', 'list', 's:c1', '--format', 'csv'])
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',')[0]),
      ['first', 'snap0'],
    );
    env.ok(t, ['snapshot', 'delete', 's:c1', 'snap0']);
    t.regex(env.ok(t, ['snapshot', 'list', 'c1']), /first/);
  });

  test.serial('stop, start, restart, snapshot restore, delete on a remote', (t) => {
    env.ok(t, ['exec', 's:c1', '--', 'touch', '/root/after-snapshot']);
    env.ok(t, ['stop', 's:c1', '--force']);
    t.regex(env.ok(t, ['list', 's:', '--format', 'csv']), /^c1,STOPPED/m);
    env.ok(t, ['snapshot', 'restore', 's:c1', 'first']);
    env.ok(t, ['start', 's:c1']);
    t.is(cli(['exec', 's:c1', '--', 'test', '-e', '/root/after-snapshot']).code, 1);
    const pid = env.ok(t, ['list', 's:', '--format', 'csv']).split('\n')[1]!.split(',').pop();
    env.ok(t, ['restart', 's:c1', '--force']);
    t.not(env.ok(t, ['list', 's:', '--format', 'csv']).split('\n')[1]!.split(',').pop(), pid);
    const running = cli(['delete', 's:c1']);
    t.is(running.code, 1);
    t.regex(running.stderr, /running.*--force/);
    env.ok(t, ['delete', 's:c1', '--force']);
    t.is(env.ok(t, ['list', '--format', 'csv']).trim(), 'NAME,STATE,IPV4,IMAGE,PID');
  });

  test.serial("remote switch: bare names are the remote's (native exec hands them over), local switches back", (t) => {
    env.ok(t, ['create', 'busybox', 's:sw1']);
    env.ok(t, ['remote', 'switch', 's']);
    try {
      t.regex(env.ok(t, ['remote', 'list']), /s \(current\)/);
      env.ok(t, ['start', 'sw1']);
      t.regex(env.ok(t, ['list']), /sw1\s+RUNNING/);
      t.is(cli(['exec', 'sw1', '--', 'sh', '-c', 'exit 4']).code, 4);
      t.is(cli(['remote', 'remove', 's']).code, 1);
      env.ok(t, ['remote', 'rename', 's', 's2']);
      t.regex(env.ok(t, ['remote', 'list']), /s2 \(current\)/);
      // The old name's TLS session and completion cache go with it (refilled under the new one by use).
      t.false(fs.existsSync(path.join(env.env.TSLXC_CONF!, 'sessions', 's.json')));
      t.false(fs.existsSync(path.join(env.env.TSLXC_CONF!, 'cache', 's.instances')));
      env.ok(t, ['stop', 'local:sw1', '--force']);
    } finally {
      env.ok(t, ['remote', 'switch', 'local']);
    }
    t.regex(env.ok(t, ['list', 's2:']), /sw1\s+STOPPED/);
    for (const verb of [
      ['exec', 'nosuch:sw1', '--', 'true'],
      ['start', 'nosuch:sw1'],
    ]) {
      const r = cli(verb);
      t.is(r.code, 1, verb.join(' '));
      t.regex(r.stderr, /Remote "nosuch" not found/);
    }
    env.ok(t, ['delete', 'sw1']);
    env.ok(t, ['remote', 'rename', 's2', 's']);
  });

  test.serial('a client without root and without a local state: remote add, list, exec', async (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-client-nobody-'));
    try {
      fs.chownSync(home, 65534, 65534);
      env.ok(t, ['launch', 'busybox', 'nb1']);
      const tok = token('nobody');
      const nobody = (args: string[]) =>
        run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', launcherPath, ...args], {
          env: { PATH: process.env.PATH, HOME: home, TSLXC_DIR: path.join(home, 'no-state'), TSLXC_RUN_DIR: path.join(home, 'no-run') },
        });
      const add = await nobody(['remote', 'add', 'srv', tok]);
      t.is(add.code, 0, add.stderr);
      t.regex((await nobody(['remote', 'list'])).stdout, /srv\s+https:\/\/\S+\s+lxd/);
      const list = await nobody(['list', 'srv:', '--format', 'csv']);
      t.is(list.code, 0, list.stderr);
      t.regex(list.stdout, /^nb1,RUNNING/m);
      const ex = await nobody(['exec', 'srv:nb1', '--', 'id', '-u']);
      t.is(ex.stdout.trim(), '0', ex.stderr);
      t.false(fs.existsSync(path.join(home, 'no-state')));
      t.true(fs.existsSync(path.join(home, '.config', 'tslxc', 'client.crt')));
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
      env.cli(['delete', '--force', 'nb1']);
    }
  });
}
