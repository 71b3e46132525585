import type { Identity } from './types.js';

/** A glob of `*` and `?` over a whole name, as `config trust add --instances` takes it. */
function globMatches(glob: string, name: string): boolean {
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
  return identity.instances === undefined || globMatches(identity.instances, name);
}
