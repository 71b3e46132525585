import { TslxcError } from '../errors.js';
import layout from '../state/layout.json' with { type: 'json' };

/**
 * Container names are DNS labels (as in LXD): they become hostnames, directory names, cgroup names
 * and parts of interface names, so they are validated before anything uses them to build a path.
 * The rule is data in layout.json, which the helper's C check (native/layout.c) reads too.
 */
const NAME = layout.name;
const inClass = (chars: string) => `[${chars.replace(/[\]\\^-]/g, '\\$&')}]`;
const EDGE_CHARS = [...NAME.chars].filter((c) => !NAME.notAtEdges.includes(c)).join('');
/** The rule's data as regular expressions, built once: a check runs for every path built from a name. */
const LABEL = new RegExp(`^${inClass(EDGE_CHARS)}(?:${inClass(NAME.chars)}{0,${NAME.maxLength - 2}}${inClass(EDGE_CHARS)})?$`);
const ONLY = new RegExp(`^${inClass(NAME.notOnly)}+$`);

/** Whether NAME is a valid container name (validateInstanceName says why not). */
export function isInstanceName(name: unknown): name is string {
  return typeof name === 'string' && nameProblem(name) === undefined;
}

function nameProblem(name: string): 'empty' | 'length' | 'chars' | 'only' | undefined {
  if (name.length === 0) return 'empty';
  if (name.length > NAME.maxLength) return 'length';
  if (!LABEL.test(name)) return 'chars';
  if (ONLY.test(name)) return 'only';
  return undefined;
}

export function validateInstanceName(name: unknown): string {
  const problem = typeof name === 'string' ? nameProblem(name) : 'empty';
  if (problem === undefined) return name as string;
  const s = name as string;
  if (problem === 'empty') throw new TslxcError('Invalid container name', 'a name is required', 'use lowercase letters, digits and "-"');
  if (problem === 'length') throw new TslxcError(`Invalid container name "${shorten(s)}"`, `it is ${s.length} characters long, the limit is ${NAME.maxLength}`);
  if (problem === 'chars') {
    throw new TslxcError(
      `Invalid container name "${shorten(s)}"`,
      'names may hold only a-z, 0-9 and "-", and may not start or end with "-"',
      'pick a name like "dev1"',
    );
  }
  throw new TslxcError(`Invalid container name "${s}"`, 'a name cannot be only digits', 'add a letter');
}

/** Image aliases and recipe names: like DNS labels but "/", "." and "_" are allowed (debian/12). */
const ALIAS = /^[a-z0-9][a-z0-9._/-]{0,127}$/i;

export function validateAlias(alias: unknown): string {
  if (typeof alias !== 'string' || !ALIAS.test(alias) || alias.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new TslxcError(`Invalid image name "${shorten(String(alias))}"`, 'use letters, digits, ".", "_", "-" and "/" between parts', undefined, {
      kind: 'invalid',
    });
  }
  return alias;
}

function shorten(s: string): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 70 ? `${printable.slice(0, 67)}...` : printable;
}
