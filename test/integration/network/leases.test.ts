import fs from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ipv4Of } from '../../helpers/instances.js';
import { processesOf } from '../../helpers/leftovers.js';
import { dnsQuery, hostLinks, nftList, nftTable, teardownNetworks, uniqueBridge, useNetworkProfile } from '../../helpers/network.js';

/**
 * A stopped or deleted container's lease is released without restarting the network's dnsmasq:
 * its PID stays, the lease leaves dnsmasq (its address goes to the next container that asks) and
 * its file, and the other containers on the bridge keep their leases and their DNS answers all
 * along. Busybox containers on a bridge of this file's own (ipv4.nat=false: traffic stays between
 * the host and the containers).
 */
if (requireRoot(test)) {
  const env = new TestEnv('lease');
  const br = uniqueBridge();
  let gw = '';
  let table = '';

  const state = (name: string) => JSON.parse(env.cli(['list', '--format', 'json']).stdout).find((c: { name: string }) => c.name === name);
  const waitIp = (t: ExecutionContext, name: string): string => {
    env.ok(t, ['wait', name, '--ip', '--timeout', '30']);
    return ipv4Of(state(name))[0];
  };
  const dnsmasqPid = (): number => JSON.parse(env.cli(['network', 'info', br, '--format', 'json']).stdout).dnsmasqPid;
  const leases = () => fs.readFileSync(`${env.paths.runDir}/networks/${br}/leases`, 'utf8');
  const hwaddr = (name: string): string => env.cli(['config', 'get', name, 'volatile.eth0.hwaddr']).stdout.trim();

  /**
   * While `action` runs: ask dnsmasq for `name` again and again (each answer must be [addr]) and
   * check that the lease of `mac` stays in the leases file. Returns what went wrong.
   */
  async function watchWhile(action: () => Promise<unknown>, name: string, addr: string, mac: string): Promise<{ queries: number; problems: string[] }> {
    const problems: string[] = [];
    let queries = 0;
    let done = false;
    const watcher = (async () => {
      while (!done) {
        try {
          const got = await dnsQuery(gw, `${name}.tslxc`, 3000);
          if (got.join() !== addr) problems.push(`${name}.tslxc answered [${got.join()}]`);
        } catch (err) {
          problems.push(String(err));
        }
        queries++;
        // dnsmasq rewrites the file in place (truncate, write) after each change: a read can
        // catch it empty. Only a lease missing from two reads apart is gone.
        if (!leases().includes(mac)) {
          await new Promise((r) => setTimeout(r, 50));
          if (!leases().includes(mac)) problems.push(`the lease of ${mac} left the leases file`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await action();
    } finally {
      done = true;
      await watcher;
    }
    return { queries, problems };
  }

  test.before(async () => {
    table = await nftTable(env);
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    const c = env.cli(['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    if (c.code !== 0) throw new Error(c.stderr);
    gw = JSON.parse(env.cli(['network', 'info', br, '--format', 'json']).stdout).ipv4.split('/')[0];
    await useNetworkProfile(env, br);
  });
  test.serial.after.always('nothing of the suite is left on the host', async (t) => {
    await env.deleteContainers();
    await teardownNetworks(env);
    const procs = processesOf(env);
    await env.cleanup().catch(() => {});
    t.deepEqual(hostLinks(br), []);
    t.is(nftList(table), undefined, `nft table ${table} left`);
    t.deepEqual(procs, []);
  });

  test.serial('stop releases the lease with dnsmasq running on; the other container keeps its lease and DNS', async (t) => {
    env.ok(t, ['launch', 'busybox', 'l1']);
    env.ok(t, ['launch', 'busybox', 'l2']);
    const [a1, a2] = [waitIp(t, 'l1'), waitIp(t, 'l2')];
    const [m1, m2] = [hwaddr('l1'), hwaddr('l2')];
    t.true(leases().includes(m1) && leases().includes(m2));
    const pid = dnsmasqPid();
    t.true(pid > 0);

    const { queries, problems } = await watchWhile(async () => t.is((await env.cliAsync(['stop', 'l1'])).code, 0), 'l2', a2, m2);
    t.deepEqual(problems, []);
    t.true(queries > 0);
    t.is(dnsmasqPid(), pid, 'dnsmasq was not restarted');
    t.false(leases().includes(m1));
    t.deepEqual(await dnsQuery(gw, 'l1.tslxc'), []);
    t.false(fs.existsSync(`${env.paths.runDir}/networks/${br}/dhcp-hosts/l1`));
    // The other container still has its address, and resolves names through dnsmasq.
    t.is(env.ok(t, ['exec', 'l2', '--', 'sh', '-c', "ip -4 -o addr show eth0 | awk '{print $4}'"]).trim(), `${a2}/24`);
    t.is(env.cli(['exec', 'l2', '--', 'nslookup', 'l2', gw]).code, 0);
    t.regex(env.ok(t, ['exec', 'l2', '--', 'nslookup', 'l2', gw]), new RegExp(a2.replace(/\./g, '\\.')));

    // dnsmasq dropped the lease from its memory too: a new container with another hwaddr, given
    // l1's address, gets it (dnsmasq refuses an address leased to another machine).
    env.ok(t, ['delete', 'l1']);
    env.ok(t, ['create', 'busybox', 'l3']);
    env.ok(t, ['config', 'device', 'add', 'l3', 'eth0', 'nic', `network=${br}`, 'name=eth0', `ipv4.address=${a1}`]);
    env.ok(t, ['start', 'l3']);
    t.is(waitIp(t, 'l3'), a1);
    t.not(hwaddr('l3'), m1);
    t.is(dnsmasqPid(), pid);
  });

  test.serial('delete --force of a running container releases its lease without a restart too', async (t) => {
    const pid = dnsmasqPid();
    const a2 = ipv4Of(state('l2'))[0];
    const [m2, m3] = [hwaddr('l2'), hwaddr('l3')];
    const { problems } = await watchWhile(async () => t.is((await env.cliAsync(['delete', '--force', 'l3'])).code, 0), 'l2', a2, m2);
    t.deepEqual(problems, []);
    t.is(dnsmasqPid(), pid, 'dnsmasq was not restarted');
    t.false(leases().includes(m3));
    t.true(leases().includes(m2));
    env.ok(t, ['delete', '--force', 'l2']);
    t.is(dnsmasqPid(), pid);
    t.is(leases().trim(), '');
    t.deepEqual(await dnsQuery(gw, 'l2.tslxc'), []);
  });

  test.serial('a poweroff inside releases through the hook, also when a stopping CLI died before its release', async (t) => {
    for (const cliPid of [undefined, 2 ** 22 + 1]) {
      env.ok(t, ['launch', 'busybox', 'p1']);
      const a = waitIp(t, 'p1');
      const mac = hwaddr('p1');
      // What a `tslxc stop` killed between telling the hook and releasing leaves: its (dead) pid.
      const monitor = Number(fs.readFileSync(`${env.paths.runDir}/containers/p1/monitor.pid`, 'utf8').split(' ')[0]);
      if (cliPid) fs.writeFileSync(`${env.paths.runDir}/containers/p1/net-release-by`, `${monitor} ${cliPid}\n`);
      env.cli(['exec', 'p1', '--', 'poweroff']);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && (state('p1').status !== 'Stopped' || leases().includes(mac))) await new Promise((r) => setTimeout(r, 100));
      t.is(state('p1').status, 'Stopped');
      t.false(leases().includes(mac), `lease of ${a} kept (cli pid ${cliPid})`);
      t.false(fs.existsSync(`${env.paths.runDir}/networks/${br}/dhcp-hosts/p1`));
      t.false(fs.existsSync(`${env.paths.runDir}/containers/p1/net-release-by`));
      env.ok(t, ['delete', 'p1']);
    }
  });

  test.serial('removing a nic from a running container releases its lease without a restart', async (t) => {
    env.ok(t, ['launch', 'busybox', 'h1']);
    waitIp(t, 'h1');
    env.ok(t, ['config', 'device', 'add', 'h1', 'eth1', 'nic', `network=${br}`, 'name=eth1']);
    // busybox's rcS runs DHCP on the nics of its boot only: ask for the new one's lease.
    env.ok(t, ['exec', 'h1', '--', 'udhcpc', '-i', 'eth1', '-n', '-q', '-t', '10', '-s', '/etc/udhcpc.script']);
    t.is(ipv4Of(state('h1')).length, 2);
    const mac1 = JSON.parse(fs.readFileSync(`${env.paths.runDir}/containers/h1/network.json`, 'utf8')).nics.find(
      (n: { device: string }) => n.device === 'eth1',
    ).hwaddr;
    t.true(leases().includes(mac1));
    const pid = dnsmasqPid();
    env.ok(t, ['config', 'device', 'remove', 'h1', 'eth1']);
    t.is(dnsmasqPid(), pid, 'dnsmasq was not restarted');
    t.false(leases().includes(mac1));
    t.is(ipv4Of(state('h1')).length, 1);
    env.ok(t, ['delete', '--force', 'h1']);
  });
}
