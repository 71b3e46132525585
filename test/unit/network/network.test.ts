import test from 'ava';
import {
  contains,
  formatIp,
  hostRange,
  overlaps,
  parseCidr,
  parseIp,
  pickFreeSubnet,
  randomUla,
  parseIpv6Cidr,
  subnetString,
} from '../../../lib/network/ipv4.js';
import { hostVethName, nftTableName, stableHwaddr, validateNetworkName, validHwaddr } from '../../../lib/network/names.js';
import { validateNetworkKey } from '../../../lib/network/store.js';
import { renderDnsmasqConf, parseLeases } from '../../../lib/network/dnsmasq.js';
import { renderRuleset } from '../../../lib/network/nft.js';
import { parseProxyEnd, validateNic, validateProxy } from '../../../lib/network/devices.js';

test('IPv4 parsing and formatting', (t) => {
  t.is(parseIp('10.1.2.3'), 0x0a010203);
  t.is(formatIp(0xffffffff), '255.255.255.255');
  for (const bad of ['10.1.2', '10.1.2.256', '01.1.2.3', 'a.b.c.d', '10.1.2.3.4', '']) t.is(parseIp(bad), undefined, bad);
  t.deepEqual(parseCidr('10.1.2.1/24'), { addr: 0x0a010201, prefix: 24 });
  t.is(parseCidr('10.1.2.1/33'), undefined);
  t.is(parseCidr('10.1.2.1'), undefined);
  t.is(subnetString(parseCidr('10.1.2.77/24')!), '10.1.2.0/24');
});

test('subnet maths: contains, overlaps, host range', (t) => {
  const a = parseCidr('10.1.2.1/24')!;
  t.true(contains(a, parseIp('10.1.2.254')!));
  t.false(contains(a, parseIp('10.1.3.1')!));
  t.true(overlaps(a, parseCidr('10.1.0.0/16')!));
  t.true(overlaps(parseCidr('10.0.0.0/8')!, a));
  t.false(overlaps(a, parseCidr('10.1.3.1/24')!));
  t.deepEqual(hostRange(a).map(formatIp), ['10.1.2.1', '10.1.2.254']);
  t.deepEqual(hostRange(parseCidr('192.168.0.1/30')!).map(formatIp), ['192.168.0.1', '192.168.0.2']);
  t.throws(() => hostRange(parseCidr('10.0.0.1/31')!));
});

test('auto picks a free /24 in 10/8 that overlaps nothing in use', (t) => {
  const used = [parseCidr('10.0.0.0/9')!, parseCidr('192.0.2.0/24')!];
  for (let i = 0; i < 50; i++) {
    const c = pickFreeSubnet(used)!;
    t.is(c.prefix, 24);
    t.is(c.addr & 255, 1);
    t.is(c.addr >>> 24, 10);
    t.false(used.some((u) => overlaps(u, c)));
  }
  t.is(pickFreeSubnet([parseCidr('10.0.0.0/8')!]), undefined);
  // Deterministic fallback when random picks keep hitting used space.
  const c = pickFreeSubnet([parseCidr('10.0.0.0/9')!], () => 0)!;
  t.is(formatIp(c.addr), '10.128.0.1');
});

test('IPv6 ULA and CIDR checks', (t) => {
  const u = randomUla();
  t.regex(u, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:1::1\/64$/);
  t.truthy(parseIpv6Cidr(u));
  t.is(parseIpv6Cidr('fd00::1::2/64'), undefined);
  t.is(parseIpv6Cidr('10.0.0.1/24'), undefined);
});

test('network keys are validated one by one', (t) => {
  t.is(validateNetworkKey('ipv4.address', '10.1.2.1/24'), '10.1.2.1/24');
  t.is(validateNetworkKey('ipv4.address', 'auto'), 'auto');
  for (const bad of ['10.1.2.0/24', '10.1.2.255/24', '10.1.2.1/31', '127.0.0.1/8', '10.1.2.300/24', 'x']) {
    t.throws(() => validateNetworkKey('ipv4.address', bad), { message: /Invalid value for "ipv4.address"/ }, bad);
  }
  t.throws(() => validateNetworkKey('ipv4.nat', 'yes'), { message: /true or false/ });
  t.throws(() => validateNetworkKey('dns.domain', 'Bad Domain'), { message: /DNS domain/ });
  t.throws(() => validateNetworkKey('bridge.mtu', '100'), { message: /1280/ });
  t.throws(() => validateNetworkKey('nope', '1'), { message: /Unknown network key "nope"/ });
  t.is(validateNetworkKey('user.note', 'anything'), 'anything');
});

test('names: networks, veth ends, MACs and the nft table', (t) => {
  t.is(validateNetworkName('tslxcbr0'), 'tslxcbr0');
  for (const bad of ['Tslxc', '0br', 'a'.repeat(16), 'br/0', 'br 0', '']) t.throws(() => validateNetworkName(bad), undefined, bad);
  const v = hostVethName('/var/lib/tslxc', 'dev1', 'eth0');
  t.regex(v, /^tsl[0-9a-f]{12}$/);
  t.true(v.length <= 15);
  t.is(hostVethName('/var/lib/tslxc', 'dev1', 'eth0'), v, 'stable');
  t.not(hostVethName('/var/lib/tslxc', 'dev1', 'eth1'), v);
  t.not(hostVethName('/tmp/other', 'dev1', 'eth0'), v, 'installations differ');
  const mac = stableHwaddr('x');
  t.true(validHwaddr(mac));
  t.is(parseInt(mac.slice(0, 2), 16) & 3, 2, 'locally administered unicast');
  t.false(validHwaddr('01:00:00:00:00:01'));
  const p = { stateDir: '/s', runDir: '/r', cacheDir: '/c', cgroupPrefix: 'tslxc' };
  t.is(nftTableName(p, {}), 'tslxc');
  t.is(nftTableName({ ...p, cgroupPrefix: 'tslxc-test-net-ab12cd' }, {}), 'tslxc_test_net_ab12cd');
  t.is(nftTableName({ ...p, cgroupPrefix: 'lab' }, {}), 'tslxc_lab');
  t.is(nftTableName(p, { TSLXC_NFT_TABLE: 'mine' }), 'mine');
});

test('dnsmasq config: one bridge, static DHCP on the subnet, DNS for the domain', (t) => {
  const f = { dir: '/r/n', conf: '/r/n/dnsmasq.conf', pid: '/r/n/pid', leases: '/r/n/leases', dhcpHosts: '/r/n/dh', hosts: '/r/n/h', log: '/r/n/log' };
  const conf = renderDnsmasqConf({ name: 'tslt1', description: '', config: { 'ipv4.address': '10.9.8.1/24', 'dns.domain': 'lab', 'bridge.mtu': '1400' } }, f);
  for (const line of [
    'interface=tslt1',
    'bind-interfaces',
    'listen-address=10.9.8.1',
    'dhcp-range=10.9.8.0,static,255.255.255.0,1h',
    'domain=lab',
    'local=/lab/',
    'dhcp-hostsdir=/r/n/dh',
    'hostsdir=/r/n/h',
    'dhcp-leasefile=/r/n/leases',
    'dhcp-option=option:mtu,1400',
    'pid-file=/r/n/pid',
  ]) {
    t.true(conf.split('\n').includes(line), line);
  }
  t.false(conf.includes('enable-ra'));
  const v6 = renderDnsmasqConf({ name: 'tslt1', description: '', config: { 'ipv4.address': '10.9.8.1/24', 'ipv6.address': 'fd01:2:3:1::1/64' } }, f);
  t.true(v6.includes('enable-ra'));
  t.true(v6.includes('listen-address=fd01:2:3:1::1'));
});

test('lease file parsing', (t) => {
  const l = parseLeases('1700000000 02:aa:bb:cc:dd:ee 10.9.8.2 c1 01:02:aa:bb:cc:dd:ee\n1700000001 02:AA:BB:CC:DD:EF 10.9.8.3 * *\nduid 00:01\n');
  t.deepEqual(
    l.map((x) => [x.hwaddr, x.ipv4, x.hostname]),
    [
      ['02:aa:bb:cc:dd:ee', '10.9.8.2', 'c1'],
      ['02:aa:bb:cc:dd:ef', '10.9.8.3', ''],
    ],
  );
  // Read while dnsmasq rewrites the file: the cut-short last line is not a lease of 10.9.8.1.
  const torn = parseLeases('1700000000 02:aa:bb:cc:dd:ee 10.9.8.2 c1 *\n1700000001 02:aa:bb:cc:dd:ef 10.9.8.1');
  t.deepEqual(
    torn.map((x) => x.ipv4),
    ['10.9.8.2'],
  );
});

test('nft ruleset: only our table, masquerade per NAT network, DNAT per proxy, deleted when empty', (t) => {
  const empty = renderRuleset('tslxc_t', [], []);
  t.is(empty, 'table ip tslxc_t\ndelete table ip tslxc_t\n');
  const r = renderRuleset(
    'tslxc_t',
    [
      { bridge: 'br1', subnet: parseCidr('10.9.8.1/24'), nat: true, localnet: true },
      { bridge: 'br2', subnet: parseCidr('10.9.9.1/24'), nat: false, localnet: false },
    ],
    [{ comment: 'c1/ssh', proto: 'tcp', listenAddr: '0.0.0.0', listenPort: 2201, targetAddr: '10.9.8.5', targetPort: 22, bridge: 'br1' }],
  );
  t.true(r.startsWith('table ip tslxc_t\ndelete table ip tslxc_t\ntable ip tslxc_t {'));
  t.regex(r, /ip saddr 10\.9\.8\.0\/24 ip daddr != 10\.9\.8\.0\/24 masquerade/);
  t.notRegex(r, /10\.9\.9\.0\/24 .*masquerade/);
  t.is(r.match(/fib daddr type local tcp dport 2201 dnat to 10\.9\.8\.5:22/g)?.length, 2, 'prerouting and output');
  t.regex(r, /iifname "br1" ip daddr 127\.0\.0\.0\/8 drop/);
  t.notRegex(r, /table (inet|ip6|bridge) /);
});

test('nic and proxy devices are validated before anything is applied', (t) => {
  const p = { stateDir: '/nonexistent-tslxc', runDir: '/nonexistent-tslxc-run', cacheDir: '/c', cgroupPrefix: 'x' };
  const opts = { checkHost: false };
  t.throws(() => validateNic('eth0', { type: 'nic' }, p, opts), { message: /exactly one of network=NAME/ });
  t.throws(() => validateNic('eth0', { type: 'nic', network: 'nosuch' }, p, opts), { message: /network "nosuch" does not exist/ });
  t.notThrows(() => validateNic('eth0', { type: 'nic', network: 'tslxcbr0' }, p, opts));
  t.throws(() => validateNic('eth0', { type: 'nic', network: 'tslxcbr0', name: 'a-very-long-interface' }, p, opts), { message: /interface name/ });
  t.throws(() => validateNic('eth0', { type: 'nic', network: 'tslxcbr0', hwaddr: '01:00:00:00:00:00' }, p, opts), { message: /unicast/ });
  t.throws(() => validateNic('eth0', { type: 'nic', network: 'tslxcbr0', color: 'red' }, p, opts), { message: /unknown nic key "color"/ });
  t.throws(() => validateProxy('web', { type: 'proxy', listen: 'tcp:0.0.0.0:99999', connect: 'tcp:127.0.0.1:80' }, opts), { message: /listen/ });
  t.throws(() => validateProxy('web', { type: 'proxy', listen: 'tcp:0.0.0.0:80', connect: 'udp:127.0.0.1:80' }, opts), { message: /same protocol/ });
  t.notThrows(() => validateProxy('web', { type: 'proxy', listen: 'tcp:0.0.0.0:2201', connect: 'tcp:127.0.0.1:22' }, opts));
  t.deepEqual(parseProxyEnd('udp:127.0.0.1:53', 'listen', 'd'), { proto: 'udp', addr: '127.0.0.1', port: 53 });
});
