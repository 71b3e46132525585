import type { LinkState } from '../../network/host.js';

/** LXD's api.Network for a managed bridge. */
export interface ApiNetwork {
  name: string;
  description: string;
  type: string;
  managed: boolean;
  status: string;
  config: Record<string, string>;
  used_by: string[];
  locations: string[];
}

export function networkShape(net: { name: string; description: string; config: Record<string, string> }, usedBy: string[]): ApiNetwork {
  return {
    name: net.name,
    description: net.description,
    type: 'bridge',
    managed: true,
    // LXD's status is whether the network is defined everywhere it should be; a bridge that is
    // down comes up with the first container that uses it, so it is "Created" all the same.
    status: 'Created',
    config: { ...net.config },
    used_by: usedBy,
    locations: ['none'],
  };
}

export const networkWritable = (net: { description: string; config: Record<string, string> }) => ({ config: net.config, description: net.description });

/** LXD's api.NetworkState for a bridge (bond, vlan and ovn are other kinds of network: null). */
export function networkStateShape(st: LinkState) {
  return {
    addresses: st.addresses,
    counters: st.counters,
    hwaddr: st.hwaddr,
    mtu: st.mtu,
    state: st.up ? 'up' : 'down',
    type: st.bridge ? 'broadcast' : 'unknown',
    bond: null,
    bridge: st.bridge ?? null,
    vlan: null,
    ovn: null,
  };
}
