import { TslxcError } from '../errors.js';

/**
 * Container names are DNS labels (as in LXD): they become hostnames, directory names, cgroup names
 * and parts of interface names, so they are validated before anything uses them to build a path.
 */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function validateInstanceName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TslxcError('Invalid container name', 'a name is required', 'use lowercase letters, digits and "-"');
  }
  if (name.length > 63) {
    throw new TslxcError(`Invalid container name "${shorten(name)}"`, `it is ${name.length} characters long, the limit is 63`);
  }
  if (!DNS_LABEL.test(name)) {
    throw new TslxcError(
      `Invalid container name "${shorten(name)}"`,
      'names may hold only a-z, 0-9 and "-", and may not start or end with "-"',
      'pick a name like "dev1"',
    );
  }
  if (/^[0-9]+$/.test(name)) {
    throw new TslxcError(`Invalid container name "${name}"`, 'a name cannot be only digits', 'add a letter');
  }
  return name;
}

/** Image aliases and recipe names: like DNS labels but "/", "." and "_" are allowed (debian/12). */
const ALIAS = /^[a-z0-9][a-z0-9._/-]{0,127}$/i;

export function validateAlias(alias: unknown): string {
  if (typeof alias !== 'string' || !ALIAS.test(alias) || alias.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new TslxcError(`Invalid image name "${shorten(String(alias))}"`, 'use letters, digits, ".", "_", "-" and "/" between parts');
  }
  return alias;
}

function shorten(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 70 ? `${printable.slice(0, 67)}...` : printable;
}
