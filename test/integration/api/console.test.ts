import { spawn } from 'node:child_process';
import test from 'ava';
import { WebSocket } from 'ws';
import { launcherPath, requireRoot } from '../../helpers/env.js';
import { apiSuite } from '../../helpers/api.js';

/**
 * The `console` extension with the real `lxc` 5.0 client: `lxc console C` attaches to the
 * container's console (here busybox's shell on it), types, reads, and detaches with ctrl+a q;
 * `--show-log` and DELETE of the log; the window size (the POST's, then window-resize) set on the
 * console's pty; refusals for a stopped instance and a VGA console.
 */
if (requireRoot(test)) {
  const suite = apiSuite(test, 'apicon', { images: ['busybox'] });
  const env = suite.env;

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** `lxc console NAME` on a terminal of its own (script(1): the client makes it raw), fed `type`. */
  async function lxcConsole(name: string, type: (write: (s: string) => Promise<void>, output: () => string) => Promise<void>, command = `lxc console ${name}`) {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...env.env, LXD_DIR: env.paths.stateDir, LXD_CONF: suite.conf, LXD_SOCKET: '', HOME: env.root },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await type(
        async (s) => {
          child.stdin.write(s);
          await sleep(300);
        },
        () => out,
      );
      const code = await Promise.race([exited, sleep(10_000).then(() => 'still attached')]);
      return { code, out };
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }

  const until = async (cond: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!cond() && Date.now() < deadline) await sleep(100);
    return cond();
  };

  test.serial('lxc console: attach, type, read, detach with ctrl+a q; again; --show-log', async (t) => {
    t.true(((await suite.server.request('GET', '/1.0')).json!.metadata.api_extensions as string[]).includes('console'));
    env.ok(t, ['launch', 'busybox', 'k1']);
    for (const n of [6, 7]) {
      const r = await lxcConsole('k1', async (write, output) => {
        t.true(await until(() => output().includes('ctrl>+a q')), output());
        await write('\n');
        await write(`echo hi-$((${n}*7))\n`);
        t.true(await until(() => output().includes(`hi-${n * 7}`)), output());
        // The client looks for the escape at the start of each read: one key at a time.
        await write('\x01');
        await write('q');
      });
      t.is(r.code, 0, r.out);
    }
    const log = await suite.server.lxc(['console', 'k1', '--show-log'], { conf: suite.conf });
    t.is(log.code, 0, log.stderr);
    t.regex(log.stdout, /hi-42[\s\S]*hi-49/);
    t.regex(env.ok(t, ['console', '--show-log', 'k1']), /hi-49/);
    // Every console operation ended with its detach.
    const ops = (await suite.server.request('GET', '/1.0/operations?recursion=1')).json!.metadata as Record<
      string,
      Array<{ status: string; description: string }>
    >;
    t.deepEqual(
      Object.values(ops ?? {})
        .flat()
        .filter((o) => o.description === 'Showing console' && o.status === 'Running'),
      [],
    );
    t.is((await suite.server.request('DELETE', '/1.0/instances/k1/console')).status, 200);
    t.notRegex(env.ok(t, ['console', '--show-log', 'k1']), /hi-4/, 'DELETE emptied the log');
    env.ok(t, ['delete', '--force', 'k1']);
  });

  test.serial('console window size: the POST gives the first, window-resize the next ones', async (t) => {
    env.ok(t, ['launch', 'busybox', 'k3']);
    const post = await suite.server.request('POST', '/1.0/instances/k3/console', { width: 100, height: 30, type: 'console' });
    t.is(post.status, 202, post.body);
    const op = post.json!.metadata as { id: string; metadata: { fds: Record<string, string> } };
    const url = (fd: string) => `ws+unix://${suite.server.socket}:/1.0/operations/${op.id}/websocket?secret=${op.metadata.fds[fd]}`;
    const data = new WebSocket(url('0'));
    const control = new WebSocket(url('control'));
    let out = '';
    data.on('message', (d: Buffer) => (out += d.toString()));
    await Promise.all([data, control].map((w) => new Promise((resolve, reject) => w.once('open', resolve).once('error', reject))));
    const size = async (expected: string) => {
      out = '';
      data.send(Buffer.from('stty size\n'));
      return until(() => out.includes(expected));
    };
    t.true(await size('30 100'), out);
    control.send(JSON.stringify({ command: 'window-resize', args: { width: '120', height: '40' } }));
    await sleep(200);
    t.true(await size('40 120'), out);
    // Malformed sizes change nothing.
    control.send(JSON.stringify({ command: 'window-resize', args: { width: '0', height: 'x' } }));
    control.send('not json');
    await sleep(200);
    t.true(await size('40 120'), out);
    const closed = new Promise((r) => data.once('close', r));
    control.close();
    await closed;
    env.ok(t, ['delete', '--force', 'k3']);
  });

  test.serial('lxc console and tslxc console give the console their terminal size', async (t) => {
    env.ok(t, ['launch', 'busybox', 'k4']);
    for (const [client, rows, cols] of [
      [`lxc console k4`, 33, 111],
      [`${launcherPath} console k4`, 35, 97],
    ] as const) {
      const r = await lxcConsole(
        'k4',
        async (write, output) => {
          t.true(await until(() => /ctrl.+a q/i.test(output())), output());
          await write('stty size\n');
          t.true(await until(() => output().includes(`${rows} ${cols}`)), `${client}: ${output()}`);
          await write('\x01');
          await write('q');
        },
        `stty rows ${rows} cols ${cols}; ${client}`,
      );
      t.is(r.code, 0, r.out);
    }
    env.ok(t, ['delete', '--force', 'k4']);
  });

  test.serial('refused: a stopped instance, a VGA console, a missing instance', async (t) => {
    env.ok(t, ['create', 'busybox', 'k2']);
    const stopped = await suite.server.request('POST', '/1.0/instances/k2/console', { width: 80, height: 24, type: 'console' });
    t.is(stopped.status, 400);
    t.regex(String(stopped.json!.error), /not running/);
    const r = await lxcConsole('k2', async () => {});
    t.not(r.code, 0);
    t.regex(r.out, /not running/);
    env.ok(t, ['start', 'k2']);
    t.is((await suite.server.request('POST', '/1.0/instances/k2/console', { type: 'vga' })).status, 400);
    t.is((await suite.server.request('POST', '/1.0/instances/k2/console', { width: 'x' })).status, 400);
    t.is((await suite.server.request('POST', '/1.0/instances/nope/console', {})).status, 404);
    env.ok(t, ['delete', '--force', 'k2']);
  });
}
