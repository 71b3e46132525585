import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { makeKey, runTool, sshOptions, startGatewayProcess, type GatewayProcess } from '../gateway/harness.js';

/**
 * A lab end to end through the SSH gateway with OpenSSH's ssh: every member reaches their own
 * containers with their own key (by the login `status` prints), never another member's, and
 * loses access when the lab goes down. The lab's bridge has ipv4.nat=false; ssh only talks to the
 * gateway on 127.0.0.1.
 */
if (requireRoot(test)) {
  const env = new TestEnv('labgw');
  const br = uniqueBridge();
  const file = path.join(env.root, 'lab.yaml');
  const knownHosts = path.join(env.root, 'known_hosts');
  const members = ['ann', 'ben', 'cat', 'dan'];
  const keys: Record<string, string> = {};
  let gw: GatewayProcess | undefined;
  const ssh = (member: string, login: string, cmd: string) => runTool('ssh', [...sshOptions(gw!, keys[member], knownHosts), `${login}@127.0.0.1`, '--', cmd]);

  test.serial.before(async () => {
    for (const m of members) keys[m] = makeKey(env.root, m);
    fs.writeFileSync(
      file,
      [
        'name: gwlab',
        `network: {name: ${br}, ipv4.nat: false}`,
        'gateway: {port: 2222, host: 127.0.0.1}',
        'members:',
        ...members.map((m) => `  - name: ${m}\n    key_files: [${m}.pub]${m === 'dan' ? '\n    count: 2' : ''}`),
      ].join('\n') + '\n',
    );
    const r = env.cli(['lab', 'up', file], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(r.stderr);
    gw = await startGatewayProcess(env);
  });
  test.serial.after.always('stop the gateway and remove the networks', async () => {
    await gw?.stop();
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial('each member reaches their own containers with the login status prints', async (t) => {
    const st = JSON.parse(env.ok(t, ['lab', 'status', file, '--format', 'json']));
    t.is(st.containers.length, 5);
    for (const row of st.containers as Array<{ member: string; container: string; connect: string }>) {
      const login = /ssh -p 2222 (\S+)@127\.0\.0\.1$/.exec(row.connect)?.[1];
      t.truthy(login, row.connect);
      t.is(login, row.member === 'dan' ? `dan+${row.container}` : row.member);
      const r = await ssh(row.member, login!, 'hostname');
      t.is(r.code, 0, r.stderr);
      t.is(r.stdout.trim(), row.container);
    }
  });

  test.serial("a member cannot reach another member's container, with their own key or by naming it", async (t) => {
    for (const [who, login] of [
      ['ann', 'ben'],
      ['ann', 'dan+dan-1'],
      ['ben', 'ann+ann'],
      ['dan', 'cat'],
    ] as const) {
      const r = await ssh(who, login, 'hostname');
      t.not(r.code, 0, `${who} as ${login}: ${r.stdout}`);
      t.is(r.stdout, '');
    }
    // Their own login, but a container that is not theirs.
    const r = await ssh('ann', 'ann+ben', 'hostname');
    t.not(r.code, 0);
    t.is(r.stdout, '');
  });

  test.serial('after lab down the members are refused; the gateway keeps running', async (t) => {
    env.ok(t, ['lab', 'down', file]);
    const r = await ssh('ann', 'ann', 'hostname');
    t.not(r.code, 0);
    t.is(r.stdout, '');
    t.is(JSON.parse(env.ok(t, ['list', '--format', 'json'])).length, 0);
    t.true(fs.existsSync(`/proc/${gw!.pid}`));
  });
}
