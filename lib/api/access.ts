import type { LabMemberCache } from '../lab/record.js';
import type { LabMembership } from './trust.js';
import type { Identity } from './types.js';

/** A glob of `*` and `?` over a whole name, as `config trust add --instances` takes it. */
function globMatches(glob: string, name: string): boolean {
  if (!glob.includes('*') && !glob.includes('?')) return glob === name;
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/**
 * Whether a caller may see and manage an instance. A restricted certificate meets any other
 * instance as if it did not exist (the routes answer 404, never 403, so names do not leak).
 */
export function allowsInstance(identity: Identity, name: string): boolean {
  return identity.instances === undefined || identity.instances.some((glob) => globMatches(glob, name));
}

/**
 * What a trust entry (a certificate, or a token a dashboard session is made from) restricts its
 * holder to, as Identity.instances: undefined when unrestricted; else its glob and, for a lab
 * member, the member's containers as `lab up` last recorded them (none once the lab is down).
 */
export function restrictionOf(entry: { restricted?: boolean; instances?: string; lab?: LabMembership }, members: LabMemberCache): string[] | undefined {
  // An administrator who lifted the restriction (restricted: false) is obeyed whatever else the entry says.
  if (entry.restricted === false) return undefined;
  if (entry.instances === undefined && entry.lab === undefined) return entry.restricted ? [] : undefined;
  return [...(entry.instances !== undefined ? [entry.instances] : []), ...(entry.lab ? members.containers(entry.lab.lab, entry.lab.member) : [])];
}
