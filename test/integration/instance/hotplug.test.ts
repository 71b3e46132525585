import fs from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ipv4Of } from '../../helpers/instances.js';
import { mountsOf, processesOf } from '../../helpers/leftovers.js';
import { hostLinks, nftList, nftTable, teardownNetworks, uniqueBridge } from '../../helpers/network.js';

/**
 * Device changes applied to running containers (hotplug): host-path disks and pool volumes
 * mounted into and out of the container's mount namespace, privileged and unprivileged (idmapped);
 * a planted symlink cannot redirect a mount; profile edits reach running containers at once; a
 * change that fails leaves everything as it was; nics get and lose their veth, reservation and
 * lease, and nothing is left on the host after a stop.
 */
if (requireRoot(test)) {
  const env = new TestEnv('hotplug');
  const br = uniqueBridge();
  let table = '';
  const share = `${env.root}/share`;

  const oneLine = (t: ExecutionContext, r: { code: number; stderr: string }, re: RegExp) => {
    t.is(r.code, 1, r.stderr);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.regex(r.stderr, re);
  };
  const inside = (t: ExecutionContext, c: string, script: string) => env.ok(t, ['exec', c, '--', 'sh', '-c', script]);
  const mountedInside = (t: ExecutionContext, c: string, dir: string) => inside(t, c, `grep -c " ${dir} " /proc/mounts || true`).trim() !== '0';
  const configOf = (t: ExecutionContext, c: string) => JSON.parse(env.ok(t, ['config', 'show', c, '--format', 'json']));
  const devicesOf = (t: ExecutionContext, c: string) => Object.keys(configOf(t, c).devices);

  test.before(async () => {
    table = await nftTable(env);
    fs.mkdirSync(share);
    fs.writeFileSync(`${share}/f`, 'hello\n');
    fs.chownSync(`${share}/f`, 1234, 1234);
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  test.serial.after.always('nothing of the file is left on the host', async (t) => {
    await env.deleteContainers();
    await teardownNetworks(env);
    const procs = processesOf(env);
    const mounts = mountsOf(env);
    await env.cleanup().catch(() => {});
    t.deepEqual(hostLinks(br), []);
    t.is(nftList(table), undefined, `nft table ${table} left`);
    t.deepEqual(procs, []);
    t.deepEqual(mounts, []);
  });

  test.serial('a host path disk is added to and removed from a running privileged container, read-only enforced', (t) => {
    env.ok(t, ['launch', 'busybox', 'hp1', '-c', 'security.privileged=true']);
    const add = env.cli(['config', 'device', 'add', 'hp1', 'share', 'disk', `source=${share}`, 'path=/mnt/share', 'readonly=true']);
    t.is(add.code, 0, add.stderr);
    t.regex(add.stderr, /applied to running container "hp1": added disk share/);
    t.is(env.ok(t, ['exec', 'hp1', '--', 'cat', '/mnt/share/f']), 'hello\n');
    t.regex(inside(t, 'hp1', 'ls -ln /mnt/share/f'), /1234\s+1234/, 'a privileged container sees host ids');
    const w = env.cli(['exec', 'hp1', '--', 'sh', '-c', 'echo x > /mnt/share/g']);
    t.not(w.code, 0);
    t.regex(w.stderr, /Read-only/);
    t.false(fs.existsSync(`${share}/g`));
    t.deepEqual(mountsOf(env), [], 'no mount on the host');
    // A single file too, made as a mount point where it was missing.
    env.ok(t, ['config', 'device', 'add', 'hp1', 'one', 'disk', `source=${share}/f`, 'path=/etc/one']);
    t.is(env.ok(t, ['exec', 'hp1', '--', 'cat', '/etc/one']), 'hello\n');

    env.ok(t, ['config', 'device', 'remove', 'hp1', 'share']);
    env.ok(t, ['config', 'device', 'remove', 'hp1', 'one']);
    t.false(mountedInside(t, 'hp1', '/mnt/share'));
    t.is(inside(t, 'hp1', 'ls -A /mnt/share; cat /etc/one'), '', 'the mount points stay, empty');
    t.deepEqual(devicesOf(t, 'hp1'), []);
    env.ok(t, ['delete', '--force', 'hp1']);
  });

  test.serial('an unprivileged container: host ids through the idmap (shift=true) or as nobody; a reboot inside keeps the disk', async (t) => {
    env.ok(t, ['launch', 'busybox', 'hu1']);
    fs.mkdirSync(`${env.root}/rw`);
    env.ok(t, ['config', 'device', 'add', 'hu1', 'plain', 'disk', `source=${share}`, 'path=/mnt/plain']);
    env.ok(t, ['config', 'device', 'add', 'hu1', 'shifted', 'disk', `source=${env.root}/rw`, 'path=/mnt/rw', 'shift=true']);
    t.regex(inside(t, 'hu1', 'ls -ln /mnt/plain/f'), /65534\s+65534/, 'unmapped host ids show as nobody');
    inside(t, 'hu1', 'echo from-inside > /mnt/rw/out');
    t.is(fs.readFileSync(`${env.root}/rw/out`, 'utf8'), 'from-inside\n');
    t.is(fs.statSync(`${env.root}/rw/out`).uid, 0, 'idmapped: container root writes as host root');
    // A changed device (config edit): unmounted, then mounted anew with its new keys.
    const doc = configOf(t, 'hu1');
    doc.devices.plain.shift = 'true';
    env.ok(t, ['config', 'edit', 'hu1'], { input: JSON.stringify({ profiles: doc.profiles, config: doc.config, devices: doc.devices }) });
    t.regex(inside(t, 'hu1', 'ls -ln /mnt/plain/f'), /1234\s+1234/, 'changed live: now idmapped');
    t.is(inside(t, 'hu1', 'grep -c " /mnt/plain " /proc/mounts').trim(), '1', 'the old mount went before the new one came');

    // A reboot inside boots again from the monitor's copy of the options: the live disks stay.
    const pid = JSON.parse(env.ok(t, ['info', 'hu1', '--format', 'json'])).state.pid;
    env.cli(['exec', 'hu1', '--', 'reboot']);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const info = JSON.parse(env.cli(['info', 'hu1', '--format', 'json']).stdout || '{}');
      if (info.state?.pid && info.state.pid !== pid && env.cli(['exec', 'hu1', '--', 'true']).code === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    t.is(env.ok(t, ['exec', 'hu1', '--', 'cat', '/mnt/rw/out']), 'from-inside\n');
    t.regex(inside(t, 'hu1', 'ls -ln /mnt/plain/f'), /1234\s+1234/);
    env.ok(t, ['delete', '--force', 'hu1']);
    t.deepEqual(mountsOf(env), []);
  });

  test.serial('a pool volume is attached to and detached from a running container', (t) => {
    env.ok(t, ['storage', 'create', 'hvp', 'dir']);
    env.ok(t, ['storage', 'volume', 'create', 'hvp', 'vol1']);
    env.ok(t, ['launch', 'busybox', 'hv1']);
    env.ok(t, ['storage', 'volume', 'attach', 'hvp', 'vol1', 'hv1', '/srv/vol']);
    inside(t, 'hv1', 'echo data > /srv/vol/x && chown 5:5 /srv/vol/x');
    const onHost = `${env.paths.stateDir}/storage-pools/hvp/volumes/vol1/x`;
    t.is(fs.readFileSync(onHost, 'utf8'), 'data\n');
    t.is(fs.statSync(onHost).uid, 5, "a volume is idmapped: stored with the container's ids");
    env.ok(t, ['storage', 'volume', 'detach', 'hvp', 'vol1', 'hv1']);
    t.false(mountedInside(t, 'hv1', '/srv/vol'));
    t.is(inside(t, 'hv1', 'ls -A /srv/vol'), '');
    env.ok(t, ['delete', '--force', 'hv1']);
    env.ok(t, ['storage', 'volume', 'delete', 'hvp', 'vol1']);
    env.ok(t, ['storage', 'delete', 'hvp']);
  });

  test.serial('a symlink the container planted at the target cannot redirect the mount to the host', (t) => {
    const victim = `${env.root}/victim`;
    fs.mkdirSync(victim);
    fs.writeFileSync(`${victim}/keep`, 'host\n');
    env.ok(t, ['launch', 'busybox', 'hs1']);
    // The same absolute path exists inside: the link resolves there, in the container's root.
    // A relative link climbing with ".." stays in the root as well (to a path only the host has).
    inside(
      t,
      'hs1',
      `mkdir -p ${victim} && ln -s ${victim} /mnt/evil && ln -s /nowhere/at/all /mnt/dangling && mkdir -p /inner && ln -s ../../../../../../../../inner /mnt/climb`,
    );
    env.ok(t, ['config', 'device', 'add', 'hs1', 'evil', 'disk', `source=${share}`, 'path=/mnt/evil']);
    env.ok(t, ['config', 'device', 'add', 'hs1', 'climb', 'disk', `source=${share}/f`, 'path=/mnt/climb/file']);
    t.is(env.ok(t, ['exec', 'hs1', '--', 'cat', `${victim}/f`]), 'hello\n', 'mounted inside the container');
    t.is(env.ok(t, ['exec', 'hs1', '--', 'cat', '/inner/file']), 'hello\n', 'the climbing link ended at the root');
    t.false(fs.existsSync('/inner'), "nothing made at the host's root");
    t.deepEqual(fs.readdirSync(victim), ['keep'], 'nothing in the host directory');
    t.deepEqual(mountsOf(env), [], 'no mount on the host');
    // A link to nowhere: the mount point cannot be made inside, so the change is refused whole.
    oneLine(
      t,
      env.cli(['config', 'device', 'add', 'hs1', 'dangling', 'disk', `source=${share}`, 'path=/mnt/dangling']),
      /^Error: Cannot add disk "dangling" of running container "hs1": .*mnt\/dangling/,
    );
    t.false(devicesOf(t, 'hs1').includes('dangling'), 'not saved');
    // Removal follows the link the same way, inside.
    env.ok(t, ['config', 'device', 'remove', 'hs1', 'evil']);
    env.ok(t, ['config', 'device', 'remove', 'hs1', 'climb']);
    t.is(inside(t, 'hs1', `grep -cE "${victim}|/inner" /proc/mounts || true`).trim(), '0');
    t.deepEqual(fs.readdirSync(victim), ['keep']);
    env.ok(t, ['delete', '--force', 'hs1']);
  });

  test.serial('a profile device reaches the running containers that use it at once; a change that fails anywhere is undone everywhere', (t) => {
    env.ok(t, ['profile', 'create', 'hshare']);
    env.ok(t, ['launch', 'busybox', 'hpa', '-p', 'default', '-p', 'hshare']);
    env.ok(t, ['launch', 'busybox', 'hpb', '-p', 'default', '-p', 'hshare']);
    const r = env.cli(['profile', 'device', 'add', 'hshare', 'share', 'disk', `source=${share}`, 'path=/opt/share', 'readonly=true']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /Applied to running container\(s\): hpa, hpb/);
    for (const c of ['hpa', 'hpb']) t.is(env.ok(t, ['exec', c, '--', 'cat', '/opt/share/f']), 'hello\n');

    // hpb cannot take a second disk (a link to nowhere where it goes): hpa, changed first, is put back.
    inside(t, 'hpb', 'mkdir -p /opt && ln -s /nowhere /opt/blocked');
    const bad = env.cli(['profile', 'device', 'add', 'hshare', 'second', 'disk', `source=${share}`, 'path=/opt/blocked']);
    oneLine(t, bad, /^Error: Cannot change profile "hshare": .*hpb.*the profile was left as it was/);
    t.false(mountedInside(t, 'hpa', '/opt/blocked'), "hpa's new mount was taken away again");
    t.false(env.ok(t, ['profile', 'show', 'hshare']).includes('second'));

    // A container's own change that fails halfway: the disk added before the failing one goes too.
    env.ok(t, ['profile', 'create', 'htwo']);
    env.ok(t, ['profile', 'device', 'add', 'htwo', 'a1', 'disk', `source=${share}`, 'path=/opt/a1']);
    env.ok(t, ['profile', 'device', 'add', 'htwo', 'b2', 'disk', `source=${share}`, 'path=/opt/blocked']);
    oneLine(t, env.cli(['profile', 'add', 'hpb', 'htwo']), /^Error: Cannot add disk "b2" of running container "hpb"/);
    t.false(mountedInside(t, 'hpb', '/opt/a1'));
    t.deepEqual(JSON.parse(env.ok(t, ['config', 'show', 'hpb', '--format', 'json'])).profiles, ['default', 'hshare']);

    // Removing the device from the profile takes it out of both.
    env.ok(t, ['profile', 'device', 'remove', 'hshare', 'share']);
    for (const c of ['hpa', 'hpb']) t.false(mountedInside(t, c, '/opt/share'));
    // A type "none" override on one container hides a profile's disk from it alone, live.
    env.ok(t, ['profile', 'device', 'add', 'hshare', 'share', 'disk', `source=${share}`, 'path=/opt/share']);
    env.ok(t, ['config', 'device', 'add', 'hpa', 'share', 'none']);
    t.false(mountedInside(t, 'hpa', '/opt/share'));
    t.true(mountedInside(t, 'hpb', '/opt/share'));
    env.ok(t, ['delete', '--force', 'hpa', 'hpb']);
    for (const p of ['hshare', 'htwo']) env.ok(t, ['profile', 'delete', p]);
  });

  test.serial('a nic is added to and removed from a running container; a stop leaves nothing on the host; proxies follow', async (t) => {
    env.ok(t, ['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    const netDir = `${env.paths.runDir}/networks/${br}`;
    env.ok(t, ['launch', 'busybox', 'hk1']);
    const r = env.cli(['network', 'attach', br, 'hk1', 'eth1']);
    t.is(r.code, 0, r.stderr);
    t.regex(inside(t, 'hk1', 'ip -o link show eth1'), /eth1@.*[,<]UP[,>]/);
    const st = JSON.parse(fs.readFileSync(`${env.paths.runDir}/containers/hk1/network.json`, 'utf8'));
    const host = st.nics[0].host as string;
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), [host]);
    t.regex(fs.readFileSync(`${netDir}/dhcp-hosts/hk1`, 'utf8'), new RegExp(`${st.nics[0].hwaddr},${st.nics[0].ipv4},hk1`));
    // busybox has no DHCP client running on the new nic: ask once, and get the reserved address.
    inside(t, 'hk1', 'udhcpc -i eth1 -n -q -t 5 -s /etc/udhcpc.script >/dev/null 2>&1');
    t.is(inside(t, 'hk1', "ip -4 -o addr show eth1 | awk '{print $4}'").trim(), `${st.nics[0].ipv4}/24`);
    t.regex(fs.readFileSync(`${netDir}/leases`, 'utf8'), new RegExp(st.nics[0].hwaddr));
    // A proxy, live: its DNAT rule comes and goes.
    env.ok(t, ['config', 'device', 'add', 'hk1', 'web', 'proxy', 'listen=tcp:127.0.0.1:18093', 'connect=tcp:127.0.0.1:80']);
    t.regex(nftList(table) ?? '', /dport 18093 dnat to/);
    env.ok(t, ['config', 'device', 'remove', 'hk1', 'web']);
    t.notRegex(nftList(table) ?? '', /dport 18093/);

    env.ok(t, ['network', 'detach', br, 'hk1']);
    t.is(env.cli(['exec', 'hk1', '--', 'ip', 'link', 'show', 'eth1']).code === 0, false, 'gone inside');
    t.deepEqual(hostLinks(host), []);
    t.false(fs.existsSync(`${netDir}/dhcp-hosts/hk1`));
    t.false(fs.existsSync(`${netDir}/hosts/hk1`));
    t.notRegex(fs.readFileSync(`${netDir}/leases`, 'utf8'), new RegExp(st.nics[0].hwaddr), 'its lease was dropped');

    // Hot-added again, then stopped: the post-stop hook knows about it.
    env.ok(t, ['network', 'attach', br, 'hk1', 'eth1']);
    env.ok(t, ['config', 'device', 'add', 'hk1', 'web', 'proxy', 'listen=tcp:127.0.0.1:18093', 'connect=tcp:127.0.0.1:80']);
    const host2 = JSON.parse(fs.readFileSync(`${env.paths.runDir}/containers/hk1/network.json`, 'utf8')).nics[0].host as string;
    env.ok(t, ['stop', 'hk1']);
    t.deepEqual(hostLinks(host2), []);
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
    t.notRegex(nftList(table) ?? '', /dport 18093/);
    t.deepEqual([fs.readdirSync(`${netDir}/dhcp-hosts`), fs.readdirSync(`${netDir}/hosts`)], [[], []]);
    // And it starts again with the nic, as configured.
    env.ok(t, ['start', 'hk1']);
    t.regex(inside(t, 'hk1', 'ip -o link show eth1'), /eth1@/);
    env.ok(t, ['delete', '--force', 'hk1']);
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
  });

  test.serial('a Debian container gets an address on a hot-added nic from systemd-networkd', async (t) => {
    t.timeout(240_000);
    if (!fs.existsSync(`/sys/class/net/${br}`)) env.ok(t, ['network', 'create', br, 'ipv4.address=auto', 'ipv4.nat=false']);
    env.ok(t, ['launch', 'debian', 'hd1']);
    env.cli(['exec', 'hd1', '--', 'timeout', '60', 'systemctl', 'is-system-running', '--wait']);
    env.ok(t, ['network', 'attach', br, 'hd1', 'eth0']);
    env.ok(t, ['wait', 'hd1', '--ip', '--timeout', '30']);
    const ip = ipv4Of(JSON.parse(env.ok(t, ['list', '--format', 'json'])).find((c: { name: string }) => c.name === 'hd1'))[0];
    t.regex(env.ok(t, ['exec', 'hd1', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']), new RegExp(` ${ip.replace(/\./g, '\\.')}/24 `));
    env.ok(t, ['network', 'detach', br, 'hd1']);
    env.ok(t, ['stop', 'hd1']);
    t.deepEqual(fs.readdirSync(`/sys/class/net/${br}/brif`), []);
    env.ok(t, ['delete', 'hd1']);
  });
}
