import { TslxcError } from '../errors.js';

/**
 * Pure parsers for the values found in config keys (limits.memory, limits.cpu, ...). Each throws a
 * TslxcError naming the bad value and what was expected; `key`, when given, leads the message so
 * the user knows which setting to fix.
 */
export interface ParseOptions {
  /** config key the value came from, e.g. "limits.memory" */
  key?: string;
}

function fail(opts: ParseOptions | undefined, value: unknown, why: string, fix?: string): never {
  const shown = JSON.stringify(typeof value === 'string' ? shorten(value) : value) ?? String(value);
  const what = opts?.key ? `Invalid value ${shown} for ${opts.key}` : `Invalid value ${shown}`;
  throw new TslxcError(what, why, fix);
}

function shorten(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// Sizes

/**
 * Decimal units are 1000-based and binary units 1024-based, as LXD reads them. The one-letter
 * forms (K, M, G, ...) follow the kernel's memparse and LXC's config, where "1G" means GiB.
 */
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  PB: 1e15,
  EB: 1e18,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
  PiB: 2 ** 50,
  EiB: 2 ** 60,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
  P: 2 ** 50,
  E: 2 ** 60,
};
// Lower-case single letters too ("512m"), as memparse accepts them.
for (const l of ['k', 'm', 'g', 't', 'p', 'e']) SIZE_UNITS[l] = SIZE_UNITS[l.toUpperCase()]!;

const SIZE_EXPECTED = 'expected a byte count like 512MiB, 2GB, 1G, 100kB or 1048576';

export interface SizeOptions extends ParseOptions {
  /** the whole that a percentage ("50%") is taken of, e.g. the host's memory; without it "%" is refused */
  total?: number;
}

/** Parse a size into a whole number of bytes (fractions round down: "1.5KiB" is 1536). */
export function parseSize(value: string | number, opts?: SizeOptions): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) fail(opts, value, 'a size must be a whole number of bytes, 0 or more');
    return value;
  }
  if (typeof value !== 'string') fail(opts, value, SIZE_EXPECTED);
  const text = value.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (pct) {
    if (opts?.total === undefined) fail(opts, value, 'a percentage is not allowed here', SIZE_EXPECTED);
    const p = Number(pct[1]);
    if (p > 100) fail(opts, value, 'a percentage must be between 0% and 100%');
    return Math.floor((opts.total * p) / 100);
  }
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text);
  if (!m) fail(opts, value, SIZE_EXPECTED);
  const unit = m[2]!;
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) {
    fail(opts, value, `unknown unit "${unit}"`, 'use B, kB, MB, GB, TB (1000-based), KiB, MiB, GiB, TiB (1024-based) or K, M, G, T');
  }
  const bytes = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) fail(opts, value, 'the size is too large');
  return bytes;
}

/** A size for humans: the largest binary unit that keeps at least 1 ("1.5GiB"). */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(v) : v.toFixed(2).replace(/\.?0+$/, '');
  return `${s}${units[i]}`;
}

// ---------------------------------------------------------------------------------------------
// CPU lists

export interface CpuListOptions extends ParseOptions {
  /** CPUs that exist (e.g. the host's online CPUs); a CPU outside them is refused */
  available?: readonly number[];
}

const CPU_LIST_EXPECTED = 'expected CPU numbers and ranges like 0-1,3';

/** Parse a kernel CPU list ("0-1,3", "2", "0-3,5-6") into sorted, distinct CPU numbers. */
export function parseCpuList(value: string, opts?: CpuListOptions): number[] {
  if (typeof value !== 'string' || value.trim() === '') fail(opts, value, CPU_LIST_EXPECTED);
  const cpus = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) fail(opts, value, `"${part.trim()}" is not a CPU number or range`, CPU_LIST_EXPECTED);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) fail(opts, value, `the range ${lo}-${hi} runs backwards`, `write ${hi}-${lo}`);
    if (hi > 8191) fail(opts, value, `CPU ${hi} is beyond what Linux supports`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  const list = [...cpus].sort((a, b) => a - b);
  if (opts?.available) {
    const avail = new Set(opts.available);
    const missing = list.filter((c) => !avail.has(c));
    if (missing.length > 0) {
      fail(opts, value, `CPU ${formatCpuList(missing)} does not exist here`, `available CPUs: ${formatCpuList([...opts.available])}`);
    }
  }
  return list;
}

/** The kernel's compact form of a CPU list: [0,1,3] → "0-1,3". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Normalize a CPU list ("3, 0-1,1" → "0-1,3"), validated. */
export function normalizeCpuList(value: string, opts?: CpuListOptions): string {
  return formatCpuList(parseCpuList(value, opts));
}

// ---------------------------------------------------------------------------------------------
// Durations

const DURATION_UNITS_US: Record<string, number> = {
  us: 1,
  µs: 1,
  ms: 1e3,
  s: 1e6,
  m: 60e6,
  h: 3600e6,
  d: 86400e6,
};
const DURATION_EXPECTED = 'expected a duration like 100ms, 30s, 5m or 1h';

/** Parse a duration into microseconds ("25ms" → 25000). A bare number is refused: units matter. */
export function parseDurationUs(value: string, opts?: ParseOptions): number {
  if (typeof value !== 'string') fail(opts, value, DURATION_EXPECTED);
  const text = value.trim();
  if (text === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zµ]+)$/.exec(text);
  if (!m) fail(opts, value, DURATION_EXPECTED);
  const mult = DURATION_UNITS_US[m[2]!];
  if (mult === undefined) fail(opts, value, `unknown unit "${m[2]}"`, 'use us, ms, s, m, h or d');
  const us = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(us)) fail(opts, value, 'the duration is too long');
  return us;
}

/** Parse a duration into milliseconds (rounded to the nearest millisecond). */
export function parseDuration(value: string, opts?: ParseOptions): number {
  return Math.round(parseDurationUs(value, opts) / 1000);
}

// ---------------------------------------------------------------------------------------------
// CPU allowance

/**
 * limits.cpu.allowance: "50%" (kind "percent") or "25ms/100ms" (kind "quota"). LXD reads a
 * percentage as a soft share; tslxc applies both kinds as a hard quota (see config/limits.ts), so
 * a percentage also comes with `quotaUs`/`periodUs`: that share of one CPU over a 100 ms period.
 */
export type CpuAllowance = { kind: 'percent'; percent: number; quotaUs: number; periodUs: number } | { kind: 'quota'; quotaUs: number; periodUs: number };

const ALLOWANCE_EXPECTED = 'expected a percentage like 50% or a time per period like 25ms/100ms';
export const DEFAULT_CPU_PERIOD_US = 100_000;

export function parseCpuAllowance(value: string, opts?: ParseOptions): CpuAllowance {
  if (typeof value !== 'string') fail(opts, value, ALLOWANCE_EXPECTED);
  const text = value.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent <= 0) fail(opts, value, 'the percentage must be more than 0%');
    // Above 100% is meaningful: 200% is two CPUs' worth.
    const quotaUs = Math.round((DEFAULT_CPU_PERIOD_US * percent) / 100);
    return { kind: 'percent', percent, quotaUs, periodUs: DEFAULT_CPU_PERIOD_US };
  }
  const parts = text.split('/');
  if (parts.length !== 2) fail(opts, value, ALLOWANCE_EXPECTED);
  const quotaUs = parseDurationUs(parts[0]!, opts);
  const periodUs = parseDurationUs(parts[1]!, opts);
  // The kernel's bounds for cpu.cfs_period_us and cpu.max: 1 ms to 1 s; quota at least 1 ms.
  if (periodUs < 1000 || periodUs > 1_000_000) fail(opts, value, 'the period must be between 1ms and 1s');
  if (quotaUs < 1000) fail(opts, value, 'the time allowed must be at least 1ms');
  return { kind: 'quota', quotaUs, periodUs };
}

// ---------------------------------------------------------------------------------------------
// Booleans and integers

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function parseBool(value: string | boolean, opts?: ParseOptions): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
  }
  return fail(opts, value, 'expected true or false (also accepted: 1/0, yes/no, on/off)');
}

export interface IntOptions extends ParseOptions {
  min?: number;
  max?: number;
}

/** A whole decimal number within [min, max]. */
export function parseInteger(value: string | number, opts?: IntOptions): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  const range =
    opts?.min !== undefined && opts?.max !== undefined
      ? ` between ${opts.min} and ${opts.max}`
      : opts?.min !== undefined
        ? ` of at least ${opts.min}`
        : opts?.max !== undefined
          ? ` of at most ${opts.max}`
          : '';
  if (!Number.isSafeInteger(n)) fail(opts, value, `expected a whole number${range}`);
  if ((opts?.min !== undefined && n < opts.min) || (opts?.max !== undefined && n > opts.max)) {
    fail(opts, value, `expected a whole number${range}`);
  }
  return n;
}
