import { spawnSync } from 'node:child_process';
import { TslxcError } from '../errors.js';
import { systemTool } from './host.js';
import { formatIp, networkOf, type Cidr } from './ipv4.js';

/**
 * tslxc's own nftables table (family ip): masquerade for networks with ipv4.nat, DNAT for proxy
 * devices. It is rendered whole from the state on disk and swapped in one `nft -f` transaction
 * (create, delete, create: atomic), so it never holds a rule of a container that is gone and
 * nothing else in the host's ruleset is touched. No network left: the table is deleted.
 */
export interface NftNetwork {
  bridge: string;
  subnet?: Cidr;
  nat: boolean;
  /** a proxy listens on loopback: route_localnet is on for this bridge, guard it */
  localnet: boolean;
}

export interface NftProxy {
  comment: string;
  proto: 'tcp' | 'udp';
  /** 0.0.0.0 = every local address */
  listenAddr: string;
  listenPort: number;
  targetAddr: string;
  targetPort: number;
  bridge: string;
}

export function renderRuleset(table: string, networks: NftNetwork[], proxies: NftProxy[]): string {
  const out = [`table ip ${table}`, `delete table ip ${table}`];
  if (networks.length === 0) return out.join('\n') + '\n';
  const dnat = proxies.map((p) => {
    const match = p.listenAddr === '0.0.0.0' ? 'fib daddr type local' : `ip daddr ${p.listenAddr}`;
    return `    ${match} ${p.proto} dport ${p.listenPort} dnat to ${p.targetAddr}:${p.targetPort} comment "${p.comment}"`;
  });
  const post: string[] = [];
  for (const n of networks) {
    if (n.nat && n.subnet) {
      const s = `${formatIp(networkOf(n.subnet))}/${n.subnet.prefix}`;
      post.push(`    ip saddr ${s} ip daddr != ${s} masquerade comment "nat ${n.bridge}"`);
    }
  }
  // A connection from the host's loopback to a proxy leaves with source 127.0.0.1: give it the
  // bridge's address so the container can answer.
  for (const p of proxies) post.push(`    ip saddr 127.0.0.0/8 ip daddr ${p.targetAddr} ${p.proto} dport ${p.targetPort} masquerade comment "${p.comment}"`);
  const guard = networks.filter((n) => n.localnet).map((n) => `    iifname "${n.bridge}" ip daddr 127.0.0.0/8 drop comment "route_localnet guard"`);
  out.push(
    `table ip ${table} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...post,
    '  }',
    // Containers must not reach the host's loopback services through a bridge with route_localnet.
    '  chain guard {',
    '    type filter hook prerouting priority raw; policy accept;',
    ...guard,
    '  }',
    '}',
  );
  return out.join('\n') + '\n';
}

export function applyRuleset(text: string): void {
  const nft = systemTool('nft', 'set up NAT and port forwards');
  const r = spawnSync(nft, ['-f', '-'], { input: text, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new TslxcError("Cannot apply tslxc's nftables rules", (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]);
  }
}

export function tableExists(table: string): boolean {
  const nft = systemTool('nft', 'read the nftables rules');
  return spawnSync(nft, ['list', 'table', 'ip', table], { stdio: 'ignore' }).status === 0;
}
