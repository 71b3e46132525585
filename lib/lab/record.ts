import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../state/paths.js';
import { mkdirp, readTextIfExists, writeFileAtomic } from '../util/fs.js';
import type { LabSpec } from './schema.js';

/**
 * The labs this installation brought up (TSLXC_DIR/labs/NAME.json): `lab up` records the file it
 * read and what it declared, `lab down` removes the record. The API server knows labs only from
 * these records (it never reads a lab file), and a lab token's certificate is restricted to what
 * the record says its member's containers are, so a changed file counts once `lab up` applied it.
 */

/** What a lab declares, as far as anything but `up` needs it: JSON, no parser positions. */
export interface LabSummary {
  name: string;
  /** the lab file's absolute path */
  file: string;
  description: string;
  network: { name: string };
  gateway: { port: number; host?: string };
  members: Array<{ name: string; containers: Array<{ name: string }> }>;
}

export interface LabRecord extends LabSummary {
  recorded_at: string;
}

export const labsDir = (p: Paths) => path.join(p.stateDir, 'labs');
const recordFile = (p: Paths, lab: string) => path.join(labsDir(p), `${lab}.json`);

export function summarize(spec: LabSpec): LabSummary {
  return {
    name: spec.name,
    file: path.resolve(spec.file),
    description: spec.description,
    network: { name: spec.network.name },
    gateway: { ...spec.gateway },
    members: spec.members.map((m) => ({ name: m.name, containers: m.containers.map((c) => ({ name: c.name })) })),
  };
}

export function writeLabRecord(p: Paths, spec: LabSpec): void {
  mkdirp(labsDir(p), 0o700);
  const record: LabRecord = { ...summarize(spec), recorded_at: new Date().toISOString() };
  writeFileAtomic(recordFile(p, spec.name), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

export function removeLabRecord(p: Paths, lab: string): void {
  fs.rmSync(recordFile(p, lab), { force: true });
}

/** A recorded lab, or undefined (never recorded, or the name is not a lab name). */
export function readLabRecord(p: Paths, lab: string): LabRecord | undefined {
  if (!/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/.test(lab)) return undefined;
  const text = readTextIfExists(recordFile(p, lab));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LabRecord;
  } catch {
    return undefined;
  }
}

export function listLabRecords(p: Paths): LabRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(labsDir(p));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => readLabRecord(p, n.slice(0, -'.json'.length)))
    .filter((r): r is LabRecord => r !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * A member's container names as the record says, for a server that asks on every request: each
 * record is re-read only when its file changed.
 */
export class LabMemberCache {
  private readonly cache = new Map<string, { mtimeMs: number; size: number; record: LabRecord | undefined }>();

  constructor(private readonly paths: Paths) {}

  containers(lab: string, member: string): string[] {
    const file = recordFile(this.paths, lab);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(file);
    } catch {
      this.cache.delete(lab);
      return [];
    }
    let hit = this.cache.get(lab);
    if (!hit || hit.mtimeMs !== st.mtimeMs || hit.size !== st.size) {
      hit = { mtimeMs: st.mtimeMs, size: st.size, record: readLabRecord(this.paths, lab) };
      this.cache.set(lab, hit);
    }
    return hit.record?.members.find((m) => m.name === member)?.containers.map((c) => c.name) ?? [];
  }
}
