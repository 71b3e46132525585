import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { WebSocket } from 'ws';
import { requireRoot } from '../../helpers/env.js';
import { apiSuite, run } from '../../helpers/api.js';

/**
 * exec and files through `tslxc serve` with the real clients: Debian's `lxc` 5.0 and pylxd 2.2.10.
 * The containers are made by the CLI (the instance routes are another module's).
 */
if (requireRoot(test)) {
  const suite = apiSuite(test, 'apilxc', {
    images: ['busybox'],
    containers: [{ name: 'c1' }],
    // The client's first run in a config dir prints a welcome hint on stderr: let it go by here.
    ready: async (s) => void (await s.server.lxc(['exec', 'c1', '--', 'true'], { conf: s.conf })),
  });
  const env = suite.env;
  const lxc = (args: string[], input?: string) => suite.server.lxc(args, { conf: suite.conf, input });

  test.serial('lxc exec: exit codes, stdout and stderr apart, stdin, --env, --cwd, --user', async (t) => {
    let r = await lxc(['exec', 'c1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
    t.is(r.code, 5);
    t.is(r.stdout, 'out\n');
    t.is(r.stderr, 'err\n');
    t.is((await lxc(['exec', 'c1', '--', 'true'])).code, 0);
    r = await lxc(['exec', 'c1', '--', 'cat'], 'from stdin\n');
    t.is(r.stdout, 'from stdin\n');
    r = await lxc([
      'exec',
      'c1',
      '--env',
      'GREETING=hi there',
      '--cwd',
      '/etc',
      '--user',
      '1000',
      '--group',
      '50',
      '--',
      'sh',
      '-c',
      'echo "$GREETING"; pwd; id -u; id -g',
    ]);
    t.is(r.stdout, 'hi there\n/etc\n1000\n50\n', r.stderr);
  });

  test.serial('lxc exec -t: a pty of the container, through a terminal made by script(1)', async (t) => {
    const r = await run('script', ['-qec', `lxc exec c1 -- sh -c 'tty; stty size; exit 3'`, '/dev/null'], {
      env: { ...process.env, LXD_DIR: env.paths.stateDir, LXD_CONF: suite.conf, LXD_SOCKET: '', HOME: env.root },
    });
    t.regex(r.stdout, /\/dev\/pts\/\d+/);
    t.regex(r.stdout, /\d+ \d+/);
    t.is(r.code, 3);
    const forced = await lxc(['exec', '-t', 'c1', '--', 'tty']);
    t.regex(forced.stdout, /^\/dev\/pts\/\d+/);
  });

  test.serial('lxc exec: a signal to the client reaches the command', async (t) => {
    const child = await import('node:child_process');
    const p = child.spawn('lxc', ['exec', 'c1', '--', 'sleep', '30'], {
      env: { ...process.env, LXD_DIR: env.paths.stateDir, LXD_CONF: suite.conf, LXD_SOCKET: '', HOME: env.root },
    });
    await new Promise((r) => setTimeout(r, 1500));
    p.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    t.is(code, 128 + 15);
    t.is((await lxc(['exec', 'c1', '--', 'sh', '-c', 'pgrep sleep || echo none'])).stdout.trim(), 'none');
  });

  test.serial('lxc file push/pull of files and -r directories, file delete', async (t) => {
    const src = path.join(env.root, 'up.txt');
    fs.writeFileSync(src, 'pushed\n');
    t.is((await lxc(['file', 'push', src, 'c1/root/up.txt', '--mode', '0640', '--uid', '1000', '--gid', '50'])).code, 0);
    t.is((await lxc(['exec', 'c1', '--', 'stat', '-c', '%a %u %g', '/root/up.txt'])).stdout, '640 1000 50\n');
    const back = path.join(env.root, 'back.txt');
    const pull = await lxc(['file', 'pull', 'c1/root/up.txt', back]);
    t.is(pull.code, 0, pull.stderr);
    t.is(fs.readFileSync(back, 'utf8'), 'pushed\n');
    const tree = path.join(env.root, 'tree');
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'sub', 'a'), 'A');
    fs.writeFileSync(path.join(tree, 'b'), 'B');
    t.is((await lxc(['file', 'push', '-r', tree, 'c1/root/'])).code, 0);
    t.is((await lxc(['exec', 'c1', '--', 'cat', '/root/tree/sub/a', '/root/tree/b'])).stdout, 'AB');
    const out = path.join(env.root, 'pulled');
    fs.mkdirSync(out);
    t.is((await lxc(['file', 'pull', '-r', 'c1/root/tree', out])).code, 0);
    t.is(fs.readFileSync(path.join(out, 'tree', 'sub', 'a'), 'utf8'), 'A');
    t.is((await lxc(['file', 'delete', 'c1/root/up.txt'])).code, 0);
    t.not((await lxc(['exec', 'c1', '--', 'test', '-e', '/root/up.txt'])).code, 0);
    const missing = await lxc(['file', 'pull', 'c1/root/nothing-here', back]);
    t.not(missing.code, 0);
  });

  test.serial('a symlink in the container never leads a push or pull outside its root', async (t) => {
    const secret = path.join(env.root, 'host-secret');
    fs.writeFileSync(secret, 'host only\n');
    await lxc(['exec', 'c1', '--', 'ln', '-s', secret, '/root/to-host']);
    await lxc(['exec', 'c1', '--', 'ln', '-s', `../../../../../../../..${env.root}`, '/root/to-host-dir']);
    const out = path.join(env.root, 'leak');
    await lxc(['file', 'pull', 'c1/root/to-host-dir/host-secret', out]);
    t.false(fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('host only'));
    const src = path.join(env.root, 'evil');
    fs.writeFileSync(src, 'overwritten\n');
    await lxc(['file', 'push', src, 'c1/root/to-host-dir/host-secret']);
    await lxc(['file', 'push', src, 'c1/root/to-host']);
    t.is(fs.readFileSync(secret, 'utf8'), 'host only\n');
  });

  test.serial('pylxd: execute (exit code and output), files put/get', async (t) => {
    const r = await suite.server.pylxd(`
import warnings; warnings.simplefilter('ignore')
import pylxd
from pylxd.models import Container
c = Container(pylxd.Client(), name='c1')
r = c.execute(['sh', '-c', 'echo out; echo err >&2; exit 3'])
print(r.exit_code, repr(r.stdout), repr(r.stderr))
c.files.put('/root/py.bin', b'\\x00\\x01binary')
print(repr(c.files.get('/root/py.bin')))
`);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `3 'out\\n' 'err\\n'\nb'\\x00\\x01binary'\n`);
  });

  test.serial('exec websocket fuzz: garbage frames and early closes; the server lives and the operations end', async (t) => {
    for (let i = 0; i < 5; i++) {
      const res = await suite.server.request('POST', '/1.0/instances/c1/exec', {
        command: ['sleep', '30'],
        'wait-for-websocket': true,
        interactive: i % 2 === 0,
      });
      t.is(res.status, 202);
      const op = res.json!.metadata;
      const fds = op.metadata.fds as Record<string, string>;
      const sockets = Object.entries(fds).map(
        ([, secret]) => new WebSocket(`ws+unix://${suite.server.socket}:/1.0/operations/${op.id}/websocket?secret=${secret}`),
      );
      await Promise.all(sockets.map((ws) => new Promise((r) => (ws.on('open', r), ws.on('error', r)))));
      for (const ws of sockets) {
        if (ws.readyState !== ws.OPEN) continue;
        ws.send('{"command":"signal","signal":"x"}');
        ws.send('{"command":"window-resize","args":{"width":"-1","height":"abc"}}');
        ws.send(Buffer.from([0xff, 0x00, 0x7f]), { binary: true });
        ws.send('garbage');
      }
      for (const ws of sockets)
        if (i % 2) ws.terminate();
        else ws.close();
      const waited = await suite.server.request('GET', `/1.0/operations/${op.id}/wait?timeout=30`);
      t.is(waited.json?.metadata?.status, 'Success', JSON.stringify(waited.json));
      t.is(waited.json?.metadata?.metadata?.return, 129, 'the command was hung up');
    }
    // A secret works once.
    const res = await suite.server.request('POST', '/1.0/instances/c1/exec', { command: ['true'], 'wait-for-websocket': true });
    const op = res.json!.metadata;
    const url = `ws+unix://${suite.server.socket}:/1.0/operations/${op.id}/websocket?secret=${op.metadata.fds['0']}`;
    const first = new WebSocket(url);
    await new Promise((r) => first.on('open', r));
    const second = new WebSocket(url);
    const refused = await new Promise<boolean>((r) => (second.on('error', () => r(true)), second.on('open', () => r(false))));
    t.true(refused);
    first.terminate();
    t.is((await lxc(['exec', 'c1', '--', 'echo', 'alive'])).stdout, 'alive\n');
  });

  test.serial('bad requests: 400, unknown instance 404, stopped instance 400', async (t) => {
    for (const body of ['{', '[]', '{"command":[]}', '{"command":"ls"}', '{"command":["ls"],"environment":{"A":1}}', '{"command":["ls"],"width":"80"}']) {
      const r = await suite.server.request('POST', '/1.0/instances/c1/exec', body);
      t.is(r.status, 400, body);
    }
    t.is((await suite.server.request('POST', '/1.0/instances/nope/exec', { command: ['true'] })).status, 404);
    t.is((await suite.server.request('GET', '/1.0/instances/nope/files?path=/etc/hostname')).status, 404);
    t.is((await suite.server.request('GET', '/1.0/instances/c1/files')).status, 400);
    t.is((await suite.server.request('POST', '/1.0/instances/c1/files?path=/x', 'a', { 'X-LXD-type': 'fifo' })).status, 400);
    t.is((await suite.server.request('GET', '/1.0/instances/c1/files?path=/dev/null')).status, 400);
    env.ok(t, ['stop', 'c1']);
    t.is((await suite.server.request('POST', '/1.0/instances/c1/exec', { command: ['true'] })).status, 400);
    // Files of a stopped container work.
    const g = await suite.server.request('GET', '/1.0/instances/c1/files?path=/etc/hostname');
    t.is(g.status, 200);
    t.is(g.body, 'c1\n');
    t.is(g.headers['x-lxd-type'], 'file');
  });
}
