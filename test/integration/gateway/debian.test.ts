import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { collect, connect, makeKey, runTool, shell, sshOptions, startGatewayProcess, waitFor, type GatewayProcess } from './harness.js';

/**
 * Files through the gateway: OpenSSH's sftp and scp (sftp mode and the legacy `scp -O`) and
 * ssh2's SFTP client against a Debian container (its own sftp-server, run through attach), and a
 * clear error from a busybox container, which has none; and a Debian login shell (su -l) on a pty.
 */
if (requireRoot(test)) {
  const env = new TestEnv('gwfiles');
  let gw: GatewayProcess | undefined;
  let key = '';
  const knownHosts = path.join(env.root, 'known_hosts');
  const scpOpts = () => sshOptions(gw!, key, knownHosts).map((a) => (a === '-p' ? '-P' : a));

  test.serial.before(async (t) => {
    const launched = await Promise.all([env.cliAsync(['launch', 'debian', 'd1']), env.cliAsync(['launch', 'busybox', 'b1'])]);
    for (const r of launched) if (r.code !== 0) t.fail(r.stderr);
    key = makeKey(env.root, 'k');
    env.ok(t, ['gateway', 'user', 'add', 'alice', '--key', `${key}.pub`, '-c', 'd1', '-c', 'b1']);
    gw = await startGatewayProcess(env);
  });
  test.serial.after.always('stop the gateway', async () => {
    await gw?.stop();
  });

  const payload = crypto.randomBytes(1 << 20);
  const local = () => path.join(env.root, 'payload.bin');

  test.serial('sftp puts and gets a file inside the Debian container', async (t) => {
    fs.writeFileSync(local(), payload);
    const back = path.join(env.root, 'back.bin');
    const batch = path.join(env.root, 'batch');
    fs.writeFileSync(batch, `put ${local()} /root/sftp.bin\nget /root/sftp.bin ${back}\nls -l /etc/hostname\n`);
    const r = await runTool('sftp', [...scpOpts(), '-b', batch, 'alice@127.0.0.1']);
    t.is(r.code, 0, r.stderr);
    t.true(fs.readFileSync(back).equals(payload));
    // It landed in the container, not on the host.
    t.is(env.ok(t, ['exec', 'd1', '--', 'sha256sum', '/root/sftp.bin']).split(' ')[0], crypto.createHash('sha256').update(payload).digest('hex'));
    t.false(fs.existsSync('/root/sftp.bin'));
  });

  test.serial('scp in and out, in sftp mode and with the legacy protocol (-O)', async (t) => {
    for (const legacy of [false, true]) {
      const flag = legacy ? ['-O'] : [];
      const remote = `/tmp/scp-${legacy ? 'legacy' : 'sftp'}.bin`;
      const up = await runTool('scp', [...flag, ...scpOpts(), local(), `alice@127.0.0.1:${remote}`]);
      t.is(up.code, 0, up.stderr);
      const back = path.join(env.root, `scp-back-${legacy}.bin`);
      const down = await runTool('scp', [...flag, ...scpOpts(), `alice@127.0.0.1:${remote}`, back]);
      t.is(down.code, 0, down.stderr);
      t.true(fs.readFileSync(back).equals(payload), `legacy=${legacy}`);
    }
  });

  test.serial('ssh2 SFTP client: readdir and stat inside the container', async (t) => {
    const c = await connect(gw!, 'alice', key);
    try {
      const sftp = await new Promise<import('ssh2').SFTPWrapper>((res, rej) => c.sftp((err, s) => (err ? rej(err) : res(s))));
      const names = await new Promise<string[]>((res, rej) => sftp.readdir('/root', (err, list) => (err ? rej(err) : res(list.map((e) => e.filename)))));
      t.true(names.includes('sftp.bin'));
      const hostname = await new Promise<Buffer>((res, rej) => sftp.readFile('/etc/hostname', (err, b) => (err ? rej(err) : res(b))));
      t.is(hostname.toString().trim(), 'd1');
    } finally {
      c.end();
    }
  });

  test.serial('a Debian login shell on a pty: root, its home, the terminal type, resizes', async (t) => {
    const c = await connect(gw!, 'alice', key);
    try {
      const sh = await shell(c, { rows: 33, cols: 91, term: 'xterm-256color' });
      let out = '';
      sh.on('data', (d: Buffer) => (out += d.toString()));
      const done = collect(sh);
      sh.write('echo "who=$(id -un) pwd=$PWD term=$TERM size=$(stty size) tty=$(tty)"\n');
      await waitFor(() => out, /who=root pwd=\/root term=xterm-256color size=33 91 tty=\/dev\/pts\/\d+/);
      sh.setWindow(50, 150, 0, 0);
      sh.write('stty size\n');
      await waitFor(() => out, /50 150/);
      sh.write('exit 6\n');
      t.is((await done).code, 6);
    } finally {
      c.end();
    }
  });

  test.serial('a container without sftp-server: a clear error', async (t) => {
    const batch = path.join(env.root, 'batch2');
    fs.writeFileSync(batch, 'ls /\n');
    const r = await runTool('sftp', [...scpOpts(), '-b', batch, 'alice+b1@127.0.0.1']);
    t.not(r.code, 0);
    t.regex(r.stderr, /this container has no sftp-server/);
  });

  leftoverHooks(test, env);
}
