import { TslxcError } from '../errors.js';

/**
 * LXD's expiry expressions (shared.GetExpiry): space-separated `<n><unit>` terms, each unit once,
 * M minutes, H hours, d days, w weeks, m months, y years ("3d", "1w 12H"). Used by
 * `snapshots.expiry` and a snapshot's own expiry; "" is never.
 */
const TERM = /^(\d+)(M|H|d|w|m|y)$/;

/** The time `expr` after `from`, or undefined for an empty expression (no expiry). */
export function expiryAfter(from: Date, expr: string, key = 'snapshots.expiry'): Date | undefined {
  const text = expr.trim();
  if (!text) return undefined;
  const seen: Record<string, number> = {};
  for (const term of text.split(/\s+/)) {
    const m = TERM.exec(term);
    if (!m || m[2] in seen || m[1].length > 6)
      throw new TslxcError(`Invalid ${key} "${expr.slice(0, 40)}"`, 'use terms like 30M, 12H, 3d, 2w, 6m, 1y, each unit once (e.g. "1w 12H")');
    seen[m[2]] = Number(m[1]);
  }
  const t = new Date(from.getTime());
  t.setUTCFullYear(t.getUTCFullYear() + (seen.y ?? 0), t.getUTCMonth() + (seen.m ?? 0), t.getUTCDate() + (seen.d ?? 0) + 7 * (seen.w ?? 0));
  return new Date(t.getTime() + ((seen.H ?? 0) * 60 + (seen.M ?? 0)) * 60_000);
}
