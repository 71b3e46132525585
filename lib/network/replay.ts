import type { Paths } from '../state/paths.js';
import type { SpecOp } from '../state/spec.js';
import type { Device } from '../profile/store.js';
import { readTextIfExists } from '../util/fs.js';
import { dnsmasqIdentity, files as dnsFiles, leaseCheck } from './dnsmasq.js';
import { readState } from './state.js';

/**
 * What a start plan (lib/instance/plan.ts) needs to replay a start of a container with nics: the
 * host's side of them as prepareNetwork left it. A replay checks that each network is up as
 * ensureNetworkUp would find it (the bridge, its dnsmasq) and that no DHCP lease of another
 * machine took the container's address (addressesInUse would then pick another one: node's
 * business), then executes the steps the start executed (prepareNetwork's: the container's network
 * state, its dnsmasq reservations and name, the hooks the helper runs, dnsmasq told). Proxies (nft rules shared by all
 * containers) and nics on an unmanaged parent bridge are left to node: undefined.
 */
export interface NetworkReplay {
  /** the networks' lock (held by prepareNetwork while it writes), then checks and steps, in plan.ts's format */
  lockFile: string;
  checks: string[][];
  steps: SpecOp[];
}

/**
 * `devs`: the container's network devices (lib/device says which are nics and proxies); with none,
 * nothing to replay; with a proxy or a nic on a parent bridge, no replay. `steps`: what the start
 * executed under the networks' lock (prepareNetwork).
 */
export function networkReplay(
  p: Paths,
  name: string,
  devs: { nics: Array<[string, Device]>; proxies: Array<[string, Device]> },
  lockFile: string,
  steps: SpecOp[],
): NetworkReplay | undefined {
  if (devs.nics.length === 0 && devs.proxies.length === 0) return { lockFile, checks: [], steps: [] };
  if (devs.proxies.length > 0 || devs.nics.some(([, d]) => !d.network)) return undefined;
  const st = readState(p, name);
  if (!st || st.proxies.length > 0 || st.nics.some((n) => !n.network)) return undefined;
  const out: NetworkReplay = { lockFile, checks: [], steps };
  const hwaddrs = st.nics.map((n) => n.hwaddr.toLowerCase());
  for (const net of new Set(st.nics.map((n) => n.network!))) {
    const f = dnsFiles(p, net);
    // As ensureNetworkUp: the bridge, a dnsmasq of ours, running the config the network asks for.
    const ours = dnsmasqIdentity(f.conf);
    // The start told the network's dnsmasq (a network serving no address has none): it must run.
    const served = steps.some((s) => s[0] === 'hup' && s[1] === f.pid);
    out.checks.push(['link', net], ...(served ? [['proc', f.pid, ours.program, ours.arg]] : []), ['text', f.conf, readTextIfExists(f.conf) ?? '']);
    for (const n of st.nics) if (n.network === net && n.ipv4) out.checks.push(leaseCheck(f.leases, n.ipv4, hwaddrs));
  }
  return out;
}
