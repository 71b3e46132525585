import fs from 'node:fs';
import { TslxcError } from '../errors.js';
import { parseBool, parseInteger } from '../util/units.js';

/**
 * User namespace id maps: what an unprivileged container's ids are on the host.
 *
 * The host range comes from root's entries in /etc/subuid and /etc/subgid (as LXD), or
 * 1000000:1000000000 when there are none. A container's map is, by default, the whole range
 * (container id N is host id base+N, shared by every non-isolated container, as LXD does);
 * `security.idmap.isolated=true` gives it a block of `security.idmap.size` (default 65536) that no
 * other isolated container uses; `security.idmap.base`/`size` pin it; `raw.idmap` maps single
 * host ids or ranges in (LXD syntax), punching holes in the range for them.
 */

export interface IdRange {
  /** first id inside the container */
  nsid: number;
  /** first id on the host */
  hostid: number;
  count: number;
}

export interface IdMap {
  uid: IdRange[];
  gid: IdRange[];
}

export interface HostRange {
  base: number;
  size: number;
}

export const DEFAULT_HOST_RANGE: HostRange = { base: 1_000_000, size: 1_000_000_000 };
export const ISOLATED_SIZE = 65536;
const MAX_ID = 2 ** 32 - 1;
/** The kernel takes up to 340 lines per map. */
const MAX_RANGES = 340;

/** root's first range in an /etc/subuid-style file, or undefined. */
export function parseSubidFile(text: string, user = 'root'): HostRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === user || who === '0') && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '')) {
      const base = Number(start);
      const size = Number(count);
      if (size > 0 && base + size - 1 <= MAX_ID) return { base, size };
    }
  }
  return undefined;
}

/** The host's range for uids and gids: root's subuid/subgid entries, else the default. */
export function hostRanges(files = { uid: '/etc/subuid', gid: '/etc/subgid' }): { uid: HostRange; gid: HostRange } {
  const read = (f: string) => {
    try {
      return parseSubidFile(fs.readFileSync(f, 'utf8'));
    } catch {
      return undefined;
    }
  };
  return { uid: read(files.uid) ?? DEFAULT_HOST_RANGE, gid: read(files.gid) ?? DEFAULT_HOST_RANGE };
}

export interface RawEntry {
  kind: 'uid' | 'gid' | 'both';
  hostid: number;
  nsid: number;
  count: number;
}

function rangeOf(text: string, key: string, line: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new TslxcError(`Invalid value for ${key}`, `"${line}": expected an id or a range FIRST-LAST`);
  const first = Number(m[1]);
  const last = m[2] !== undefined ? Number(m[2]) : first;
  if (last < first || last > MAX_ID) throw new TslxcError(`Invalid value for ${key}`, `"${line}": bad range ${text}`);
  return [first, last - first + 1];
}

/** raw.idmap: lines `uid|gid|both HOSTID[-LAST] NSID[-LAST]` (LXD's syntax); blank lines and # comments skipped. */
export function parseRawIdmap(value: string, key = 'raw.idmap'): RawEntry[] {
  const out: RawEntry[] = [];
  for (const raw of value.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const f = line.split(/\s+/);
    if (f.length !== 3 || !['uid', 'gid', 'both'].includes(f[0]!)) {
      throw new TslxcError(
        `Invalid value for ${key}`,
        `"${line.slice(0, 60)}": expected "uid|gid|both HOSTID[-LAST] CONTAINERID[-LAST]"`,
        'e.g. "both 1000 1000"',
      );
    }
    const [hostid, hcount] = rangeOf(f[1]!, key, line);
    const [nsid, ncount] = rangeOf(f[2]!, key, line);
    if (hcount !== ncount) throw new TslxcError(`Invalid value for ${key}`, `"${line}": the host and container ranges differ in size`);
    // Host root mapped in would make the container's files (and setuid programs) host root's.
    if (hostid === 0)
      throw new TslxcError(
        `Invalid value for ${key}`,
        `"${line}": it maps host ${f[0] === 'gid' ? 'gid' : 'uid'} 0 (root) into the container`,
        "use security.privileged=true for a container whose root is the host's",
      );
    out.push({ kind: f[0] as RawEntry['kind'], hostid, nsid, count: hcount });
  }
  if (out.length === 0) throw new TslxcError(`Invalid value for ${key}`, 'no mapping in it');
  return out;
}

/** What a container without security.privileged is. */
export const PRIVILEGED_BY_DEFAULT = false;

/** Whether the config asks for a privileged container (no user namespace). */
export function isPrivileged(config: Record<string, string>): boolean {
  const v = config['security.privileged'];
  return v === undefined ? PRIVILEGED_BY_DEFAULT : parseBool(v, { key: 'security.privileged' });
}

export function isIsolated(config: Record<string, string>): boolean {
  const v = config['security.idmap.isolated'];
  return v !== undefined && parseBool(v, { key: 'security.idmap.isolated' });
}

/**
 * One id kind's map: [0, size) → [base, base+size), with the raw entries punched in (each raw
 * container range is taken out of the main range, and the raw host range must not overlap the
 * host ids the rest maps to).
 */
export function buildRanges(base: number, size: number, raw: RawEntry[], kind: 'uid' | 'gid'): IdRange[] {
  const mine = raw.filter((r) => r.kind === kind || r.kind === 'both').sort((a, b) => a.nsid - b.nsid);
  const out: IdRange[] = [];
  let next = 0; // first container id not yet mapped
  const pushMain = (from: number, to: number) => {
    if (to > from) out.push({ nsid: from, hostid: base + from, count: to - from });
  };
  for (const r of mine) {
    if (r.nsid < next) throw new TslxcError('Invalid value for raw.idmap', `container ${kind} ${r.nsid} is mapped twice`);
    pushMain(next, Math.min(r.nsid, size));
    out.push({ nsid: r.nsid, hostid: r.hostid, count: r.count });
    next = r.nsid + r.count;
  }
  pushMain(next, size);
  // Host ids may be used once: a raw host range inside what the main range maps is refused.
  const main = out.filter((x) => x.hostid === base + x.nsid);
  for (const r of mine) {
    for (const m of main) {
      if (r.hostid < m.hostid + m.count && m.hostid < r.hostid + r.count && !(r.hostid === m.hostid && r.nsid === m.nsid)) {
        throw new TslxcError(
          'Invalid value for raw.idmap',
          `host ${kind} ${r.hostid} is already in the container's range (${base}-${base + size - 1})`,
          'map a host id outside it',
        );
      }
    }
  }
  if (!out.some((x) => x.nsid === 0)) throw new TslxcError('Invalid id map', `the container's root ${kind} 0 is not mapped`);
  if (out.length > MAX_RANGES) throw new TslxcError('Invalid id map', `more than ${MAX_RANGES} ranges`, 'use fewer raw.idmap entries');
  return out;
}

/** The helper's --uidmap/--gidmap options. */
export function idmapArgs(map: IdMap): string[] {
  return [
    ...map.uid.flatMap((r) => ['--uidmap', `${r.nsid}:${r.hostid}:${r.count}`]),
    ...map.gid.flatMap((r) => ['--gidmap', `${r.nsid}:${r.hostid}:${r.count}`]),
  ];
}

/** A map as LXD writes volatile.idmap.current: a JSON list of {Isuid, Isgid, Hostid, Nsid, Maprange}. */
export function formatIdmap(map: IdMap): string {
  const entries = [
    ...map.uid.map((r) => ({ Isuid: true, Isgid: false, Hostid: r.hostid, Nsid: r.nsid, Maprange: r.count })),
    ...map.gid.map((r) => ({ Isuid: false, Isgid: true, Hostid: r.hostid, Nsid: r.nsid, Maprange: r.count })),
  ];
  return JSON.stringify(entries);
}

export function parseIdmapJson(text: string | undefined): IdMap | undefined {
  if (!text) return undefined;
  try {
    const list = JSON.parse(text) as Array<{ Isuid: boolean; Isgid: boolean; Hostid: number; Nsid: number; Maprange: number }>;
    if (!Array.isArray(list)) return undefined;
    const map: IdMap = { uid: [], gid: [] };
    for (const e of list) {
      const r = { nsid: e.Nsid, hostid: e.Hostid, count: e.Maprange };
      if (![r.nsid, r.hostid, r.count].every((n) => Number.isInteger(n) && n >= 0)) return undefined;
      if (e.Isuid) map.uid.push(r);
      if (e.Isgid) map.gid.push(r);
    }
    return map;
  } catch {
    return undefined;
  }
}

/** The host id a container id maps to (undefined: unmapped, it shows as nobody on the host side). */
export function toHost(ranges: IdRange[], id: number): number | undefined {
  const r = ranges.find((x) => id >= x.nsid && id < x.nsid + x.count);
  return r ? r.hostid + (id - r.nsid) : undefined;
}

/** The container id a host id maps to (undefined: unmapped, it shows as nobody inside). */
export function toContainer(ranges: IdRange[], id: number): number | undefined {
  const r = ranges.find((x) => id >= x.hostid && id < x.hostid + x.count);
  return r ? r.nsid + (id - r.hostid) : undefined;
}

export const IDMAP_KEYS = [
  {
    key: 'security.privileged',
    describe: 'true: no user namespace, container root is host root (default false; next start)',
    check: (v: string, key: string) => void parseBool(v, { key }),
  },
  {
    key: 'security.idmap.isolated',
    describe: 'true: an id range of its own, shared with no other isolated container (next start)',
    check: (v: string, key: string) => void parseBool(v, { key }),
  },
  {
    key: 'security.idmap.base',
    describe: "first host id of the container's id range (next start)",
    check: (v: string, key: string) => void parseInteger(v, { key, min: 1, max: MAX_ID }),
  },
  {
    key: 'security.idmap.size',
    describe: "number of ids in the container's range, at least 65536 (next start)",
    check: (v: string, key: string) => void parseInteger(v, { key, min: 65536, max: MAX_ID }),
  },
  {
    key: 'raw.idmap',
    describe: 'host ids mapped in: lines "uid|gid|both HOSTID[-LAST] CONTAINERID[-LAST]" (next start)',
    check: (v: string, key: string) => void parseRawIdmap(v, key),
  },
];
