import { TslxcError } from '../errors.js';
import type { KeyDef } from './keys.js';
import { SYSCALL_NAMES } from './syscalls.js';
import { parseBool } from '../util/units.js';

/**
 * security.* config keys: changes to the seccomp deny list, nesting and lxcfs. They are read at start
 * (a running container keeps the policy it started with, attached commands included).
 */

const KNOWN = new Set(SYSCALL_NAMES);

/** A comma list of syscall names of the helper's table (x86_64 and i386 names); spaces allowed. */
export function parseSyscallList(value: string, key: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new TslxcError(`Invalid value for ${key}`, 'expected a comma-separated list of syscall names');
  for (const n of names) {
    if (!KNOWN.has(n)) {
      const shown = n.length > 40 ? `${n.slice(0, 37)}...` : n;
      throw new TslxcError(`Invalid value for ${key}`, `unknown syscall ${JSON.stringify(shown)}`, 'use x86_64 or i386 syscall names, e.g. kexec_load,bpf');
    }
  }
  return [...new Set(names)];
}

export const SECURITY_KEYS: KeyDef[] = [
  {
    key: 'security.syscalls.deny',
    describe: 'syscalls refused (EPERM) on top of the default deny list, comma-separated (next start)',
    check: (v, key) => void parseSyscallList(v, key),
  },
  {
    key: 'security.syscalls.allow',
    describe: 'syscalls taken out of the default deny list, comma-separated (next start)',
    check: (v, key) => void parseSyscallList(v, key),
  },
  {
    key: 'security.nesting',
    describe: 'true: the cgroup hierarchies are writable inside, for containers in the container (next start)',
    check: (v, key) => void parseBool(v, { key }),
  },
  {
    key: 'security.lxcfs',
    describe: "false: /proc/meminfo, cpuinfo, uptime... inside show the host's figures, not lxcfs's view of the limits (next start)",
    check: (v, key) => void parseBool(v, { key }),
  },
];

export interface SecurityPolicy {
  deny: string[];
  allow: string[];
  nesting: boolean;
  /** lxcfs's views bound over /proc files (true unless security.lxcfs=false) */
  lxcfs: boolean;
}

/** The policy of an expanded config (already validated; a bad value still throws a one-line error). */
export function securityPolicy(config: Record<string, string>): SecurityPolicy {
  const list = (k: string) => (config[k] !== undefined ? parseSyscallList(config[k], k) : []);
  const nesting = config['security.nesting'] !== undefined && parseBool(config['security.nesting'], { key: 'security.nesting' });
  const lxcfs = config['security.lxcfs'] === undefined || parseBool(config['security.lxcfs'], { key: 'security.lxcfs' });
  return { deny: list('security.syscalls.deny'), allow: list('security.syscalls.allow'), nesting, lxcfs };
}

/** The helper options for the seccomp part of a policy (start and attach take the same). */
export function seccompArgs(p: Pick<SecurityPolicy, 'deny' | 'allow'>): string[] {
  return [...p.deny.flatMap((n) => ['--seccomp-deny', n]), ...p.allow.flatMap((n) => ['--seccomp-allow', n])];
}
