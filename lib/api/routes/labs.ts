import { TslxcError } from '../../errors.js';
import { readLabRecord, listLabRecords, type LabRecord } from '../../lab/record.js';
import { allowsInstance } from '../access.js';
import { ApiError, sync, type ApiRequest, type ApiResult, type Identity, type Route } from '../types.js';

/**
 * /1.0/labs: the labs `tslxc lab up` recorded, their members with their containers and whether
 * they hold a trusted certificate, a member's reset and a member's token (/work/notes s10-labapi:
 * the contract the dashboard uses). A restricted caller sees only the members whose containers it
 * may manage, and only the labs that have one; the rest answer 404 as if they did not exist.
 */

interface LabMemberShape {
  name: string;
  trusted: boolean;
  instances: Array<{ name: string; status: string; ipv4: string[] }>;
}

interface LabShape {
  name: string;
  description: string;
  network: { name: string; ipv4: string; state: string };
  gateway: { host: string; port: number };
  members: LabMemberShape[];
}

const labUrl = (name: string) => `/1.0/labs/${encodeURIComponent(name)}`;

function memberVisible(identity: Identity, member: LabRecord['members'][number]): boolean {
  return identity.instances === undefined || member.containers.some((c) => allowsInstance(identity, c.name));
}

function visibleMembers(identity: Identity, record: LabRecord): LabRecord['members'] {
  return record.members.filter((m) => memberVisible(identity, m));
}

function requireLab(req: ApiRequest): LabRecord {
  const record = readLabRecord(req.ctx.paths, req.params.name!);
  if (!record || !visibleMembers(req.identity, record).length) throw new ApiError(404, 'Lab not found');
  return record;
}

function requireMember(req: ApiRequest, record: LabRecord): LabRecord['members'][number] {
  const member = record.members.find((m) => m.name === req.params.member);
  if (!member || !memberVisible(req.identity, member)) throw new ApiError(404, 'Lab member not found');
  return member;
}

async function labShape(req: ApiRequest, record: LabRecord): Promise<LabShape> {
  const { labStatus } = await import('../../lab/status.js');
  const { labTrust } = await import('../trust.js');
  const members = visibleMembers(req.identity, record);
  const st = await labStatus(req.ctx, { ...record, members });
  const trust = labTrust(req.ctx.paths, record.name);
  return {
    name: record.name,
    description: record.description,
    network: { name: st.network.name, ipv4: st.network.ipv4 ?? '', state: st.network.state },
    gateway: st.gateway,
    members: members.map((m) => ({
      name: m.name,
      trusted: (trust.get(m.name)?.certificates ?? 0) + (trust.get(m.name)?.sessions ?? 0) > 0,
      instances: st.containers
        .filter((c) => c.member === m.name && allowsInstance(req.identity, c.container))
        .map((c) => ({ name: c.container, status: c.status ?? 'Missing', ipv4: c.ipv4 })),
    })),
  };
}

async function listLabs(req: ApiRequest): Promise<ApiResult> {
  const records = listLabRecords(req.ctx.paths).filter((r) => visibleMembers(req.identity, r).length);
  const recursion = Number(req.query.get('recursion') ?? 0);
  if (recursion > 0) return sync(await Promise.all(records.map((r) => labShape(req, r))));
  return sync(records.map((r) => labUrl(r.name)));
}

async function getLab(req: ApiRequest): Promise<ApiResult> {
  return sync(await labShape(req, requireLab(req)));
}

async function resetMember(req: ApiRequest): Promise<ApiResult> {
  const record = requireLab(req);
  const member = requireMember(req, record);
  const instances = member.containers.map((c) => `/1.0/instances/${encodeURIComponent(c.name)}`);
  const operation = req.operations.start({
    class: 'task',
    description: 'Resetting lab member',
    resources: { instances, labs: [labUrl(record.name)] },
    run: async () => {
      const { labReset } = await import('../../lab/reset.js');
      const results = await labReset(req.ctx, record, [member.name]);
      const failed = results.filter((r) => r.error);
      if (failed.length) throw new TslxcError(`Cannot reset ${failed.map((f) => f.container).join(', ')}`, failed[0]!.error);
      for (const r of results) req.events.lifecycle('instance-restored', `/1.0/instances/${encodeURIComponent(r.container)}`, { snapshot: 'lab-start' });
    },
  });
  return { type: 'async', operation };
}

async function memberToken(req: ApiRequest): Promise<ApiResult> {
  if (req.identity.instances !== undefined) throw new ApiError(403, 'A restricted certificate cannot make tokens');
  const record = requireLab(req);
  const member = requireMember(req, record);
  const body = await req.json<Record<string, unknown>>();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'Expected a JSON object');
  if (body.expires !== undefined && typeof body.expires !== 'string') throw new ApiError(400, '"expires" must be a duration such as "1d"');
  const { parseDuration } = await import('../../util/units.js');
  const { issueToken } = await import('../trust.js');
  let expiresMs: number;
  try {
    expiresMs = parseDuration((body.expires as string | undefined) || '1d', { key: 'expires' });
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  if (expiresMs <= 0) throw new ApiError(400, '"expires" must be longer than zero');
  const r = await issueToken(req.ctx.paths, { name: `${member.name}@${record.name}`, lab: { lab: record.name, member: member.name }, expiresMs });
  return sync({ token: r.token, expires_at: r.expiresAt });
}

export const routes: Route[] = [
  { method: 'GET', path: '/1.0/labs', handler: listLabs },
  { method: 'GET', path: '/1.0/labs/{name}', handler: getLab },
  { method: 'POST', path: '/1.0/labs/{name}/members/{member}/reset', handler: resetMember },
  { method: 'POST', path: '/1.0/labs/{name}/members/{member}/token', handler: memberToken },
];

export const extensions = ['tslxc_labs'];
