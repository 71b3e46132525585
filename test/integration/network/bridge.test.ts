import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ipv4Of, type Listed } from '../../helpers/instances.js';
import { processesOf } from '../../helpers/leftovers.js';
import { dnsQuery, freePort, hostLinks, nftList, nftTable, teardownNetworks, uniqueBridge, useNetworkProfile } from '../../helpers/network.js';

/**
 * Real managed networks with busybox containers: DHCP, DNS, proxies, static addresses, cleanup.
 * Every network of this file has a bridge name unique to the run and ipv4.nat=false; traffic only
 * goes between the host and containers on these bridges.
 */
if (requireRoot(test)) {
  const env = new TestEnv('net');
  const br = uniqueBridge();
  const br2 = uniqueBridge();
  let gw = '';
  let table = '';

  const cli = (...args: string[]) => env.cli(args);
  const state = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name);
  const ipOf = (name: string): string | undefined => ipv4Of(state(name))[0];
  const waitIp = (t: import('ava').ExecutionContext, name: string) => {
    env.ok(t, ['wait', name, '--ip', '--timeout', '30']);
    return ipOf(name)!;
  };
  const leases = () => fs.readFileSync(`${env.paths.runDir}/networks/${br}/leases`, 'utf8');
  const oneLine = (t: import('ava').ExecutionContext, r: { code: number; stderr: string }, re: RegExp) => {
    t.is(r.code, 1, r.stderr);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re);
  };
  const hostPing = (addr: string) => spawnSync('busybox', ['ping', '-c', '1', '-W', '2', addr], { encoding: 'utf8' }).status === 0;
  const httpGet = (host: string, port: number) =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ host, port, path: '/', timeout: 3000 }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject)
        .on('timeout', function (this: http.ClientRequest) {
          this.destroy(new Error('timeout'));
        });
    });

  test.before(async () => {
    table = await nftTable(env);
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const c = env.cli(['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    if (c.code !== 0) throw new Error(c.stderr);
    gw = JSON.parse(env.cli(['network', 'info', br, '--format', 'json']).stdout).ipv4.split('/')[0];
    await useNetworkProfile(env, br);
  });
  // One hook: cleanup, then the check (ava may run separate after hooks side by side).
  test.serial.after.always('nothing of the suite is left on the host', async (t) => {
    // Containers first (they hold the networks), then the networks, then the dirs.
    await env.deleteContainers();
    await teardownNetworks(env);
    const procs = processesOf(env);
    await env.cleanup().catch(() => {});
    t.deepEqual(hostLinks(br, br2), []);
    t.is(nftList(table), undefined, `nft table ${table} left`);
    t.deepEqual(procs, []);
  });

  test.serial('a network is a bridge with its dnsmasq, and shows in list/show/info', (t) => {
    t.true(fs.existsSync(`/sys/class/net/${br}/bridge`));
    t.regex(gw, /^10\.\d+\.\d+\.1$/);
    const list = JSON.parse(env.ok(t, ['network', 'list', '--format', 'json']));
    t.is(list.find((n: { name: string }) => n.name === br)?.state, 'up');
    t.regex(env.ok(t, ['network', 'show', br]), /ipv4\.nat: 'false'|ipv4\.nat: "false"|ipv4\.nat: false/);
    const info = JSON.parse(env.ok(t, ['network', 'info', br, '--format', 'json']));
    t.true(info.dnsmasqPid > 0);
    t.truthy(nftList(table));
  });

  test.serial('two containers get addresses, ping each other by name; the host reaches them by address and name', async (t) => {
    env.ok(t, ['launch', 'busybox', 'n1']);
    env.ok(t, ['launch', 'busybox', 'n2']);
    const a1 = waitIp(t, 'n1');
    const a2 = waitIp(t, 'n2');
    t.not(a1, a2);
    t.is(env.ok(t, ['exec', 'n1', '--', 'sh', '-c', "ip -4 -o addr show eth0 | awk '{print $4}'"]).trim(), `${a1}/24`);
    t.is(env.cli(['exec', 'n1', '--', 'ping', '-c', '1', '-W', '2', 'n2']).code, 0);
    t.is(env.cli(['exec', 'n2', '--', 'ping', '-c', '1', '-W', '2', 'n1.tslxc']).code, 0);
    t.true(hostPing(a1));
    t.deepEqual(await dnsQuery(gw, 'n2.tslxc'), [a2]);
    t.true(hostPing((await dnsQuery(gw, 'n1.tslxc'))[0]));
    // The host end has a stable name starting with tsl and sits on the bridge.
    const ends = fs.readdirSync(`/sys/class/net/${br}/brif`);
    t.is(ends.length, 2);
    t.true(ends.every((e) => /^tsl[0-9a-f]{12}$/.test(e)));
    t.is(env.ok(t, ['network', 'list-leases', br, '--format', 'json']).includes(a1), true);
  });

  test.serial('reboot from inside keeps the address', async (t) => {
    const before = ipOf('n1')!;
    const pid = state('n1').state.pid;
    env.cli(['exec', 'n1', '--', 'reboot']);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(state('n1').state.pid && state('n1').state.pid !== pid)) await new Promise((r) => setTimeout(r, 100));
    t.not(state('n1').state.pid, pid);
    t.is(waitIp(t, 'n1'), before);
    t.is(env.cli(['exec', 'n1', '--', 'ping', '-c', '1', '-W', '2', 'n2']).code, 0);
    t.deepEqual(await dnsQuery(gw, 'n1.tslxc'), [before]);
  });

  test.serial('stop and delete leave no host end, lease, DNS name or reservation', async (t) => {
    const hw = (name: string) =>
      Object.entries(JSON.parse(fs.readFileSync(`${env.paths.runDir}/containers/${name}/network.json`, 'utf8')).nics).map(
        ([, n]) => (n as { host: string }).host,
      );
    const [host1] = hw('n1');
    const a1 = ipOf('n1')!;
    env.ok(t, ['stop', 'n1']);
    t.false(fs.existsSync(`/sys/class/net/${host1}`));
    t.false(leases().includes(a1));
    t.deepEqual(await dnsQuery(gw, 'n1.tslxc'), []);
    t.false(fs.existsSync(`${env.paths.runDir}/networks/${br}/dhcp-hosts/n1`));
    // Started again, it keeps its address (its reservation lives in its config).
    env.ok(t, ['start', 'n1']);
    t.is(waitIp(t, 'n1'), a1);
    const [host2] = hw('n2');
    env.ok(t, ['delete', '--force', 'n1', 'n2']);
    t.false(fs.existsSync(`/sys/class/net/${host1}`));
    t.false(fs.existsSync(`/sys/class/net/${host2}`));
    t.is(leases().trim(), '');
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
    t.deepEqual(await dnsQuery(gw, 'n2.tslxc'), []);
  });

  test.serial('a crash (init killed) releases the network too', async (t) => {
    env.ok(t, ['launch', 'busybox', 'cr1']);
    const a = waitIp(t, 'cr1');
    process.kill(state('cr1').state.pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (state('cr1').status !== 'Stopped' || leases().includes(a))) await new Promise((r) => setTimeout(r, 100));
    t.is(state('cr1').status, 'Stopped');
    t.false(leases().includes(a));
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
    env.ok(t, ['delete', 'cr1']);
  });

  test.serial('a static address is honoured across restarts; taken or outside addresses are refused', (t) => {
    const subnet = gw.split('.').slice(0, 3).join('.');
    env.ok(t, ['create', 'busybox', 's1']);
    env.ok(t, ['config', 'device', 'add', 's1', 'eth0', 'nic', `network=${br}`, 'name=eth0', `ipv4.address=${subnet}.77`]);
    env.ok(t, ['start', 's1']);
    t.is(waitIp(t, 's1'), `${subnet}.77`);
    env.ok(t, ['restart', 's1']);
    t.is(waitIp(t, 's1'), `${subnet}.77`);
    env.ok(t, ['stop', 's1']);
    env.ok(t, ['start', 's1']);
    t.is(waitIp(t, 's1'), `${subnet}.77`);

    env.ok(t, ['create', 'busybox', 's2']);
    env.ok(t, ['config', 'device', 'add', 's2', 'eth0', 'nic', `network=${br}`, 'name=eth0', `ipv4.address=${subnet}.77`]);
    oneLine(t, cli('start', 's2'), /already taken by container s1/);
    t.not(state('s2').status, 'Running');
    t.false(fs.existsSync(`${env.paths.runDir}/containers/s2/network.json`));
    env.ok(t, ['config', 'device', 'remove', 's2', 'eth0']);
    // Refused when the device is added (config validation), or at the latest at start.
    const add = env.cli(['config', 'device', 'add', 's2', 'eth0', 'nic', `network=${br}`, 'name=eth0', 'ipv4.address=10.255.255.7']);
    if (add.code === 0) oneLine(t, cli('start', 's2'), /outside network/);
    else oneLine(t, add, /outside network/);
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`).length, 1);
    env.ok(t, ['delete', '--force', 's1', 's2']);
  });

  test.serial('a proxy device forwards a host port to the container (bridge address and loopback)', async (t) => {
    // Ports free right now (another run on this host may hold fixed ones).
    const [p1, p2] = [await freePort(), await freePort()];
    env.ok(t, ['create', 'busybox', 'web']);
    env.ok(t, ['config', 'device', 'add', 'web', 'http', 'proxy', `listen=tcp:0.0.0.0:${p1}`, 'connect=tcp:127.0.0.1:80']);
    env.ok(t, ['start', 'web']);
    waitIp(t, 'web');
    env.ok(t, ['exec', 'web', '--', 'sh', '-c', 'mkdir -p /www && echo hello-proxy > /www/index.html && httpd -h /www -p 80']);
    t.is((await httpGet(gw, p1)).trim(), 'hello-proxy');
    t.is((await httpGet('127.0.0.1', p1)).trim(), 'hello-proxy');
    t.regex(nftList(table)!, new RegExp(`dport ${p1} dnat to`));
    // The loopback path needs route_localnet on the bridge, guarded against containers.
    t.regex(nftList(table)!, /ip daddr 127\.0\.0\.0\/8 drop/);
    // A second container asking for the same port, and a port a host socket holds: refused.
    env.ok(t, ['create', 'busybox', 'web2']);
    env.ok(t, ['config', 'device', 'add', 'web2', 'http', 'proxy', `listen=tcp:0.0.0.0:${p1}`, 'connect=tcp:127.0.0.1:80']);
    oneLine(t, cli('start', 'web2'), /already forwarded by container web|already in use/);
    const server = net.createServer().listen(p2, '0.0.0.0');
    await new Promise((r) => server.once('listening', r));
    try {
      env.ok(t, ['config', 'device', 'remove', 'web2', 'http']);
      const add = cli('config', 'device', 'add', 'web2', 'http', 'proxy', `listen=tcp:0.0.0.0:${p2}`, 'connect=tcp:127.0.0.1:80');
      if (add.code === 0) oneLine(t, cli('start', 'web2'), new RegExp(`port ${p2} is already in use on the host`));
      else oneLine(t, add, new RegExp(`port ${p2} is already in use on the host`));
    } finally {
      server.close();
    }
    t.not(state('web2').status, 'Running');
    env.ok(t, ['stop', 'web']);
    t.notRegex(nftList(table)!, new RegExp(`dport ${p1}\\b`));
    await t.throwsAsync(httpGet(gw, p1));
    env.ok(t, ['delete', '--force', 'web', 'web2']);
  });

  test.serial('bad network input gets one clear line and changes nothing', async (t) => {
    oneLine(t, cli('network', 'create', br2, `ipv4.address=${gw}/24`), /overlaps/);
    oneLine(t, cli('network', 'create', br2, 'ipv4.address=10.1.2.300/24'), /Invalid value for "ipv4.address"/);
    oneLine(t, cli('network', 'create', br2, 'ipv4.address=10.1.2.0/24'), /network or broadcast/);
    oneLine(t, cli('network', 'create', br2, 'ipv4.address=10.1.2.1/33'), /Invalid value/);
    oneLine(t, cli('network', 'create', br2, 'bogus.key=1'), /Unknown network key/);
    oneLine(t, cli('network', 'create', 'Bad_Name!'), /Invalid network name/);
    oneLine(t, cli('network', 'create', br), /already exists/);
    t.deepEqual(hostLinks(br2), []);
    t.false(fs.existsSync(`${env.paths.stateDir}/networks/${br2}.yaml`));
    // A nic on a network that does not exist.
    env.ok(t, ['create', 'busybox', 'lost']);
    const add = cli('config', 'device', 'add', 'lost', 'eth1', 'nic', 'network=nosuchnet', 'name=eth1');
    if (add.code === 0) oneLine(t, cli('start', 'lost'), /network "nosuchnet" does not exist/);
    else oneLine(t, add, /nosuchnet/);
    t.not(state('lost').status, 'Running');
    t.false(fs.existsSync(`${env.paths.runDir}/containers/lost/network.json`));
    env.ok(t, ['delete', 'lost']);
    // In use (by the profile, and by a container): refused.
    oneLine(t, cli('network', 'delete', br), /in use by/);
    t.true(fs.existsSync(`/sys/class/net/${br}`));
  });

  test.serial('network set/unset/rename/delete on an unused network', (t) => {
    env.ok(t, ['network', 'create', br2, 'ipv4.nat=false']);
    env.ok(t, ['network', 'set', br2, 'dns.domain=lab.test']);
    t.regex(fs.readFileSync(`${env.paths.runDir}/networks/${br2}/dnsmasq.conf`, 'utf8'), /domain=lab\.test/);
    env.ok(t, ['network', 'set', br2, 'bridge.mtu', '1400']);
    t.is(fs.readFileSync(`/sys/class/net/${br2}/mtu`, 'utf8').trim(), '1400');
    env.ok(t, ['network', 'unset', br2, 'bridge.mtu']);
    t.is(fs.readFileSync(`/sys/class/net/${br2}/mtu`, 'utf8').trim(), '1500');
    oneLine(t, cli('network', 'set', br2, 'ipv4.nat=maybe'), /expected true or false/);
    const renamed = uniqueBridge();
    env.ok(t, ['network', 'rename', br2, renamed]);
    t.false(fs.existsSync(`/sys/class/net/${br2}`));
    t.true(fs.existsSync(`/sys/class/net/${renamed}`));
    env.ok(t, ['network', 'delete', renamed]);
    t.deepEqual(hostLinks(renamed), []);
  });

  test.serial('50 containers launched in parallel get 50 distinct leases', async (t) => {
    const names = Array.from({ length: 50 }, (_, i) => `p${i}`);
    const queue = [...names];
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let n = queue.shift(); n; n = queue.shift()) {
          const r = await env.cliAsync(['launch', 'busybox', n]);
          if (r.code !== 0) failures.push(`${n}: ${r.stderr.trim()}`);
        }
      }),
    );
    t.deepEqual(failures, []);
    const deadline = Date.now() + 60_000;
    let got: string[] = [];
    while (Date.now() < deadline) {
      const rows = JSON.parse(env.cli(['list', '--format', 'json']).stdout) as Listed[];
      got = rows.filter((r) => names.includes(r.name) && ipv4Of(r).length).map((r) => ipv4Of(r)[0]);
      if (got.length === 50) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    t.is(got.length, 50);
    t.is(new Set(got).size, 50);
    t.is(leases().trim().split('\n').length, 50);
    const del = await Promise.all(
      names.map((n, i) => new Promise<number>((r) => setTimeout(() => env.cliAsync(['delete', '--force', n]).then((x) => r(x.code)), (i % 10) * 50))),
    );
    t.true(del.every((c) => c === 0));
    t.is(leases().trim(), '');
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
  });
}
