import type { Summary } from './stats.js';

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function fmtKiB(kib: number): string {
  if (!Number.isFinite(kib)) return '—';
  return kib >= 1024 ? `${(kib / 1024).toFixed(2)} MiB` : `${Math.round(kib)} KiB`;
}

/** "612 ms (580–700)": the median, then the range. */
export function fmtSummary(s: Summary | undefined, fmt: (x: number) => string = fmtMs): string {
  if (!s || s.n === 0) return '—';
  if (s.n === 1) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min).replace(/ .*/, '')}–${fmt(s.max)})`;
}

export function fmtRatio(a: Summary | undefined, b: Summary | undefined): string {
  if (!a || !b || !a.n || !b.n || !b.median) return '';
  return `${(a.median / b.median).toFixed(2)}×`;
}

export interface Row {
  what: string;
  tslxc?: string;
  lxc?: string;
  node?: string;
  ratio?: string;
  target?: string;
}

/** A plain-text table; a row with only `what` is a section heading. */
export function renderTable(rows: Row[], lxcLabel: string): string {
  const header: Row = { what: 'measurement', tslxc: 'tslxc', lxc: lxcLabel, node: 'node -e 0', ratio: 'tslxc/LXC', target: 'target' };
  const keys: (keyof Row)[] = ['what', 'tslxc', 'lxc', 'node', 'ratio', 'target'];
  const all = [header, ...rows];
  const width = keys.map((k) => Math.max(...all.filter((r) => !isHeading(r) || r === header).map((r) => (r[k] ?? '').length)));
  const line = (r: Row) =>
    keys
      .map((k, i) => (r[k] ?? '').padEnd(width[i]))
      .join('  ')
      .trimEnd();
  const rule = width.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(header), rule];
  for (const r of rows) out.push(isHeading(r) ? r.what : line(r));
  return out.join('\n');
}

function isHeading(r: Row): boolean {
  return r.tslxc === undefined && r.lxc === undefined && r.node === undefined && r.ratio === undefined && r.target === undefined;
}

/** A plain-text grid: the first row is the header; a string row is a section line. */
export function renderGrid(header: string[], rows: (string[] | string)[]): string {
  const cells = [header, ...rows.filter((r): r is string[] => Array.isArray(r))];
  const width = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    width
      .map((w, i) => (r[i] ?? '').padEnd(w))
      .join('  ')
      .trimEnd();
  const out = [line(header), width.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) out.push(Array.isArray(r) ? line(r) : r);
  return out.join('\n');
}

/** "+120 ms": the difference of two medians. */
export function fmtDelta(a: Summary | undefined, b: Summary | undefined): string {
  if (!a?.n || !b?.n) return '—';
  const d = a.median - b.median;
  return `${d >= 0 ? '+' : '−'}${fmtMs(Math.abs(d))}`;
}
