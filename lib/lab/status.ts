import os from 'node:os';
import type { Context } from '../state/context.js';
import { instanceState } from '../instance/status.js';
import { getGatewayUser } from '../gateway/users.js';
import { summarize } from '../network/manage.js';
import { networkExists } from '../network/store.js';
import { labContainers, MEMBER_KEY } from './plan.js';
import type { LabSummary } from './record.js';
import type { LabSpec } from './schema.js';

export interface LabContainerStatus {
  member: string;
  container: string;
  /** the container's state, MISSING when the file lists it and it does not exist (yet), or EXTRA when the file no longer lists it */
  state: string;
  /** the instance's status as the API says it ("Running", "Stopped"...), absent when MISSING */
  status?: string;
  ipv4: string[];
  /** the ssh command that reaches it through the gateway */
  connect: string;
}

export interface LabStatus {
  lab: string;
  description: string;
  network: { name: string; ipv4?: string; state: string };
  gateway: { host: string; port: number };
  containers: LabContainerStatus[];
}

/**
 * Each member's containers as they are now, and how to reach them: `ssh -p PORT member@HOST` when
 * the member has one container, `member+CONTAINER@HOST` for each when they have several (the
 * gateway's login-name syntax).
 */
export async function labStatus(ctx: Context, spec: LabSummary): Promise<LabStatus> {
  const host = spec.gateway.host ?? os.hostname();
  const port = spec.gateway.port;
  const existing = new Map(labContainers(ctx, spec.name).map((c) => [c.name, c]));
  const connect = (member: string, container: string, several: boolean) => `ssh -p ${port} ${several ? `${member}+${container}` : member}@${host}`;
  const rows: LabContainerStatus[] = [];
  for (const m of spec.members) {
    const several = m.containers.length > 1;
    for (const c of m.containers) {
      const cfg = existing.get(c.name);
      existing.delete(c.name);
      if (!cfg) {
        rows.push({ member: m.name, container: c.name, state: 'MISSING', ipv4: [], connect: '' });
        continue;
      }
      const st = await instanceState(ctx, cfg);
      rows.push({
        member: m.name,
        container: c.name,
        state: st.status.toUpperCase(),
        status: st.status,
        ipv4: st.ipv4,
        connect: getGatewayUser(ctx.paths, m.name) ? connect(m.name, c.name, several) : '',
      });
    }
  }
  for (const cfg of existing.values()) {
    const st = await instanceState(ctx, cfg);
    rows.push({
      member: cfg.config[MEMBER_KEY] ?? '',
      container: cfg.name,
      state: `EXTRA (${st.status.toUpperCase()})`,
      status: st.status,
      ipv4: st.ipv4,
      connect: '',
    });
  }
  let network: LabStatus['network'] = { name: spec.network.name, state: 'missing' };
  if (networkExists(ctx.paths, spec.network.name)) {
    const s = summarize(ctx.paths, spec.network.name);
    network = { name: s.name, ...(s.ipv4 ? { ipv4: s.ipv4 } : {}), state: s.state };
  }
  return { lab: spec.name, description: spec.description, network, gateway: { host, port }, containers: rows };
}

export interface MemberRow {
  member: string;
  containers: string[];
  image: string;
  keys: Array<{ type: string; fingerprint: string; comment: string }>;
}

/** The members as the file declares them, with their keys' fingerprints (as ssh-keygen -l shows). */
export function labMembers(spec: LabSpec): MemberRow[] {
  return spec.members.map((m) => ({
    member: m.name,
    containers: m.containers.map((c) => c.name),
    image: m.image,
    keys: m.keys.map((k) => ({ type: k.type, fingerprint: k.fingerprint, comment: k.comment })),
  }));
}
