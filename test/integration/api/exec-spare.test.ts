import fs from 'node:fs';
import test from 'ava';
import { requireRoot } from '../../helpers/env.js';
import { ApiServer, apiSuite } from '../../helpers/api.js';

/**
 * The helper serve keeps ready for the next exec (native/spare.c, lib/api/routes/exec.ts): execs
 * that take it behave as execs that spawn one (output, stdin, exit code, TERM of a pty), and it
 * goes with the server, SIGKILL included.
 */

/** The server's children that are spare helpers (one started ahead of the next exec). */
function spares(serverPid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== serverPid) continue;
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes('spare')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function gone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!fs.existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

if (requireRoot(test)) {
  const { env } = apiSuite(test, 'apispare', { images: ['busybox'], serve: false });

  test.serial('execs through the spare: streams, exit codes, a pty; it goes with the server', async (t) => {
    env.ok(t, ['launch', 'busybox', 's1']);
    const server = await ApiServer.start(env);
    const conf = server.lxcConf();
    try {
      // The client's first run with a new LXD_CONF prints a greeting on stderr: not an exec's.
      t.is((await server.lxc(['list'], { conf })).code, 0);
      // The first exec spawns its helper and leaves a spare; each later one takes it.
      for (let i = 0; i < 3; i++) {
        const r = await server.lxc(['exec', 's1', '--', 'sh', '-c', `read x; echo "out $x"; echo err${i} >&2; exit ${i + 3}`], { conf, input: `in${i}\n` });
        t.is(r.code, i + 3, r.stderr);
        t.is(r.stdout, `out in${i}\n`);
        t.is(r.stderr, `err${i}\n`);
      }
      const pty = await server.lxc(['exec', 's1', '-t', '--env', 'TERM=vt100', '--', 'sh', '-c', 'echo "$TERM"; [ -t 0 ] && echo tty'], { conf });
      t.is(pty.code, 0, pty.stderr);
      t.is(pty.stdout.replace(/\r/g, ''), 'vt100\ntty\n');
      let ready: number[] = [];
      for (let i = 0; i < 40 && !ready.length; i++) {
        ready = spares(server.workerPid ?? server.pid);
        if (!ready.length) await new Promise((r) => setTimeout(r, 50));
      }
      t.is(ready.length, 1, 'one spare waits for the next exec');
      await server.kill();
      t.true(await gone(ready[0]!, 5000), 'the spare ends with its server');
    } finally {
      if (server.child.exitCode === null) await server.stop();
    }
    env.ok(t, ['delete', '-f', 's1']);
  });
}
