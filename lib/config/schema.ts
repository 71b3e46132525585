import { TslxcError } from '../errors.js';
import type { HostFacts } from '../host/facts.js';
import type { KeyDef } from './keys.js';
import { limitsFromConfig } from './limits.js';
import { SECURITY_KEYS } from './security.js';
import { IDMAP_KEYS } from './idmap.js';
import { expiryAfter } from './expiry.js';
import { formatSize, parseBool, parseCpuAllowance, parseCpuList, parseDurationUs, parseInteger, parseSize } from '../util/units.js';

/**
 * The config keys a container or profile may carry, and what their values may be. Every change
 * (config set, profile set/edit, create -c) goes through validateChange before anything is saved,
 * so an unknown key, a bad unit or an absurd value is refused with one line naming the key and
 * nothing is applied.
 *
 * Host checks (more CPUs or memory than the host has) need the host's figures: callers pass them
 * as `host`. Profiles are validated against the host too when they are changed here; a built-in
 * profile that asks for more than this host has (large: 4 CPUs) is refused when a container using
 * it starts, with the same line.
 */

export const KEY_NAME = /^[a-z0-9][a-z0-9._-]*[a-z0-9]$/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Linux's PID_MAX_LIMIT: no pids.max above it means anything. */
const MAX_PROCESSES = 4_194_304;
const MIN_MEMORY = 4 * 2 ** 20;

function bad(key: string, value: string, why: string, fix?: string): never {
  throw new TslxcError(`Invalid value ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)} for ${key}`, why, fix);
}

const oneOf =
  (...allowed: string[]) =>
  (v: string, key: string) => {
    if (!allowed.includes(v.trim())) bad(key, v, `expected ${allowed.join(' or ')}`);
  };

const bool = (v: string, key: string) => void parseBool(v, { key });

function checkMemory(v: string, key: string, host?: HostFacts): void {
  const pct = v.trim().endsWith('%');
  const bytes = parseSize(v, { key, total: host?.memoryBytes ?? (pct ? 0 : undefined) });
  if (pct && !/^\d+(\.\d+)?\s*%$/.test(v.trim())) bad(key, v, 'expected a percentage like 50%');
  if (pct && Number(v.trim().slice(0, -1)) <= 0) bad(key, v, 'a percentage must be above 0%');
  if (!pct && bytes < MIN_MEMORY) bad(key, v, `a container needs at least ${formatSize(MIN_MEMORY)}`);
  if (host && bytes > host.memoryBytes) {
    bad(key, v, `the host has only ${formatSize(host.memoryBytes)} of memory`, `use at most ${formatSize(host.memoryBytes)}, or a percentage like 50%`);
  }
}

function checkSwap(v: string, key: string): void {
  if (/^(true|false|yes|no|on|off|1|0)$/i.test(v.trim())) return;
  parseSize(v, { key });
}

function checkCpu(v: string, key: string, host?: HostFacts): void {
  if (/^\s*\d+\s*$/.test(v)) {
    const n = parseInteger(v, { key, min: 1 });
    if (host && n > host.cpus.length) bad(key, v, `the host has only ${host.cpus.length} CPUs`, `use at most ${host.cpus.length}, or a list like 0-1`);
    return;
  }
  parseCpuList(v, { key, ...(host ? { available: host.cpus } : {}) });
}

function checkAllowance(v: string, key: string, host?: HostFacts): void {
  const a = parseCpuAllowance(v, { key });
  if (a.quotaUs < 1000) bad(key, v, 'it allows less than 1ms of CPU time per period', 'use at least 1%');
  const cpus = a.quotaUs / a.periodUs;
  if (host && cpus > host.cpus.length) {
    bad(key, v, `it is ${Math.round(cpus * 100)}% of one CPU and the host has only ${host.cpus.length} CPUs`, `use at most ${host.cpus.length * 100}%`);
  }
}

/** boot.autostart.delay: seconds as LXD has it ("10"), or a duration ("10s", "500ms"); at most an hour. */
export function parseDelaySeconds(v: string, key = 'boot.autostart.delay'): number {
  const s = /^\s*\d+\s*$/.test(v) ? parseInteger(v, { key, min: 0 }) : parseDurationUs(v, { key }) / 1e6;
  if (s > 3600) bad(key, v, 'expected at most an hour');
  return s;
}

const KEYS: KeyDef[] = [
  { key: 'limits.cpu', describe: 'CPUs: a count (2) or a list (0-1,3)', check: checkCpu },
  { key: 'limits.cpu.allowance', describe: 'hard CPU quota: 50% of one CPU, or 25ms/100ms', check: checkAllowance },
  { key: 'limits.cpu.priority', describe: 'CPU weight under contention, 0-10', check: (v, key) => void parseInteger(v, { key, min: 0, max: 10 }) },
  { key: 'limits.memory', describe: 'memory: a size (512MiB, 2GB) or a share of host memory (50%)', check: checkMemory },
  { key: 'limits.memory.swap', describe: 'swap: true (unlimited), false (none) or a size', check: checkSwap },
  { key: 'limits.memory.enforce', describe: 'hard (OOM-kill above it) or soft (reclaim above it)', check: oneOf('hard', 'soft') },
  {
    key: 'limits.processes',
    describe: 'maximum number of processes and threads',
    check: (v, key) => void parseInteger(v, { key, min: 1, max: MAX_PROCESSES }),
  },
  { key: 'limits.disk.priority', describe: 'I/O weight under contention, 0-10', check: (v, key) => void parseInteger(v, { key, min: 0, max: 10 }) },
  { key: 'boot.autostart', describe: 'start at host boot ("tslxc autostart")', check: bool },
  { key: 'boot.autostart.priority', describe: 'higher starts first, 0-1000', check: (v, key) => void parseInteger(v, { key, min: 0, max: 1000 }) },
  { key: 'boot.autostart.delay', describe: 'wait after starting it: seconds (10) or a duration (500ms)', check: (v, key) => void parseDelaySeconds(v, key) },
  {
    key: 'environment.',
    describe: "environment.NAME: a variable in init's environment",
    check: (v, key) => {
      if (!ENV_NAME.test(key.slice('environment.'.length))) {
        throw new TslxcError(`Invalid config key "${key}"`, 'the variable name must be letters, digits and "_", not starting with a digit');
      }
      if (v.includes('\0')) bad(key, v, 'a NUL byte cannot be in an environment variable');
    },
  },
  {
    key: 'snapshots.expiry',
    describe: 'how long a new snapshot is kept: 30M, 12H, 3d, 2w, 6m, 1y (expired ones are deleted)',
    check: (v, key) => void expiryAfter(new Date(), v, key),
  },
  { key: 'user.', describe: 'user.NAME: free-form, for your own use' },
  { key: 'image.', describe: 'image.*: from the image (read-only)', readOnly: true },
  ...SECURITY_KEYS,
  ...IDMAP_KEYS,
  { key: 'volatile.', describe: 'volatile.*: state tslxc keeps (volatile.idmap.current: the id map of the last start; read-only)', readOnly: true },
];

/** Another part of tslxc (security.*, later) adds its keys here. */
export function registerConfigKeys(defs: KeyDef[]): void {
  for (const d of defs) {
    if (KEYS.some((k) => k.key === d.key)) throw new Error(`config key ${d.key} registered twice`);
    KEYS.push(d);
  }
}

export function configKeys(): readonly KeyDef[] {
  return KEYS;
}

export function findKey(key: string): KeyDef | undefined {
  return KEYS.find((k) => !k.key.endsWith('.') && k.key === key) ?? KEYS.find((k) => k.key.endsWith('.') && key.startsWith(k.key) && key.length > k.key.length);
}

function knownNamespaces(): string {
  const tops = [...new Set(KEYS.filter((k) => !k.readOnly).map((k) => k.key.split('.')[0]))];
  return tops.map((t) => `${t}.*`).join(', ');
}

/** One key and its value; throws a one-line error naming the key. */
export function validateKey(key: string, value: string, host?: HostFacts): void {
  if (!KEY_NAME.test(key)) throw new TslxcError(`Invalid config key "${key.slice(0, 70)}"`, 'keys are letters, digits, ".", "_" and "-"');
  const def = findKey(key);
  if (!def) throw new TslxcError(`Unknown config key "${key}"`, `known keys are ${knownNamespaces()}`, 'see "tslxc config keys"');
  if (def.readOnly) throw new TslxcError(`Cannot set ${key}`, `it is read-only (set by tslxc${key.startsWith('image.') ? ' from the image' : ''})`);
  if (typeof value !== 'string') throw new TslxcError(`Invalid value for ${key}`, 'expected a string');
  if (value.trim() === '') throw new TslxcError(`Invalid value for ${key}`, 'it is empty', `to remove it, use "unset"`);
  def.check?.(value, key, host);
}

/** Only the key name (for unset): unknown keys may be unset, read-only ones not. */
export function validateUnsetKey(key: string): void {
  if (!KEY_NAME.test(key)) throw new TslxcError(`Invalid config key "${key.slice(0, 70)}"`, 'keys are letters, digits, ".", "_" and "-"');
  if (findKey(key)?.readOnly) throw new TslxcError(`Cannot unset ${key}`, 'it is read-only (set by tslxc from the image)');
}

/**
 * A whole change: every key set is validated, then the resulting config as a whole is turned into
 * limits (which catches combinations, e.g. a CPU count over the host's). Nothing is applied here.
 */
export function validateChange(set: Record<string, string>, host?: HostFacts): void {
  for (const [k, v] of Object.entries(set)) validateKey(k, v, host);
}

/** The expanded config of a container, as a whole, against the host: what start would apply. */
export function validateExpanded(config: Record<string, string>, host: HostFacts, name?: string): void {
  limitsFromConfig(config, { hostMemoryBytes: host.memoryBytes, hostCpus: host.cpus, ...(name ? { name } : {}) });
  for (const [k, v] of Object.entries(config)) {
    if (k.startsWith('limits.')) validateKey(k, v, host);
  }
}

// ---------------------------------------------------------------------------------------------
// Devices

const DEVICE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

export function validateDeviceName(name: string): string {
  if (!DEVICE_NAME.test(name)) throw new TslxcError(`Invalid device name "${name.slice(0, 70)}"`, 'use letters, digits, ".", "_" and "-", at most 63');
  return name;
}

/** A device's keys and values as config text, whatever its type (lib/device checks what each type takes). */
export function validateDeviceKeys(name: string, dev: Record<string, string>): void {
  for (const [k, v] of Object.entries(dev)) {
    if (!KEY_NAME.test(k) && !/^[a-z]$/i.test(k)) throw new TslxcError(`Invalid device "${name}"`, `bad key "${k.slice(0, 40)}"`);
    if (typeof v !== 'string' || v.includes('\0')) throw new TslxcError(`Invalid device "${name}"`, `bad value for "${k}"`);
  }
}
