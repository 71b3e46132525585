import yaml from 'js-yaml';
import { TslxcError } from '../../errors.js';

import { FORMATS, type Format } from '../options/format.js';

export { FORMATS, type Format };

export interface Column<T> {
  header: string;
  value: (row: T) => string | number | undefined;
}

/** Render rows for humans (an aligned table) or for scripts (json, yaml, csv of the same data). */
export function renderRows<T>(rows: T[], columns: Column<T>[], format: Format, raw: (row: T) => unknown = (r) => r): string {
  switch (format) {
    case 'json':
      return JSON.stringify(rows.map(raw), null, 2);
    case 'yaml':
      return rows.length ? yaml.dump(rows.map(raw), { noRefs: true, lineWidth: 120 }).trimEnd() : '[]';
    case 'csv':
      return [columns.map((c) => csvCell(c.header)), ...rows.map((r) => columns.map((c) => csvCell(String(c.value(r) ?? ''))))]
        .map((l) => l.join(','))
        .join('\n');
    case 'table':
      return table(
        columns.map((c) => c.header),
        rows.map((r) => columns.map((c) => String(c.value(r) ?? ''))),
      );
    default:
      throw new TslxcError(`Unknown format "${format as string}"`, undefined, `use one of ${FORMATS.join(', ')}`);
  }
}

export function renderValue(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : yaml.dump(value, { noRefs: true, lineWidth: 120 }).trimEnd();
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function humanBytes(n: number | undefined): string {
  if (n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[u]}`;
}

export function humanDuration(seconds: number | undefined): string {
  if (seconds === undefined) return '';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, `${s}s`].filter(Boolean).join(' ');
}
