import fs from 'node:fs';
import path from 'node:path';
import { containerRunDir, type Paths } from '../state/paths.js';
import { writeFileAtomic } from '../util/fs.js';
import { validateInstanceName } from '../util/names.js';
import type { NftProxy } from './nft.js';

/**
 * What a running container's networking put on the host, written by start before the boot and
 * read by release, list and the nft rendering: TSLXC_RUN_DIR/containers/NAME/network.json. It
 * names what to remove even after the container's config changed.
 */
export interface NicState {
  device: string;
  /** the name inside the container */
  name: string;
  /** the host end of the veth pair */
  host: string;
  network?: string;
  parent?: string;
  hwaddr: string;
  ipv4?: string;
  static: boolean;
  mtu?: number;
}

/** A running container's port forward, as the nft table renders it (the device names it). */
export type ProxyState = Omit<NftProxy, 'comment'> & { device: string };

export interface NetState {
  nics: NicState[];
  proxies: ProxyState[];
}

export const stateFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'network.json');
export const startHookFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'net-start-host.sh');
export const stopHookFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'net-post-stop.sh');
/** "MONITOR_PID CLI_PID": a CLI stopping the container releases its network itself (renderStopHook). */
export const releaseByFile = (p: Paths, name: string) => path.join(containerRunDir(p, name), 'net-release-by');

export function readState(p: Paths, name: string): NetState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(stateFile(p, name), 'utf8')) as NetState;
    return { nics: s.nics ?? [], proxies: s.proxies ?? [] };
  } catch {
    return undefined;
  }
}

/** The state file's text. */
export const stateText = (st: NetState) => JSON.stringify(st, null, 1) + '\n';

export function writeState(p: Paths, name: string, st: NetState): void {
  writeFileAtomic(stateFile(p, name), stateText(st), 0o600);
}

export function removeState(p: Paths, name: string): void {
  for (const f of [stateFile(p, name), startHookFile(p, name), stopHookFile(p, name), releaseByFile(p, name)]) fs.rmSync(f, { force: true });
}

/** Every container of this installation that has network state on the host. */
export function readAllStates(p: Paths): Array<{ name: string; state: NetState }> {
  const dir = path.join(p.runDir, 'containers');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Array<{ name: string; state: NetState }> = [];
  for (const n of names) {
    try {
      validateInstanceName(n);
    } catch {
      continue;
    }
    const st = readState(p, n);
    if (st) out.push({ name: n, state: st });
  }
  return out;
}
