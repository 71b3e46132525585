import { ApiError } from './types.js';

/**
 * LXD's api_filtering (shared/filter): `?filter=name eq c1 and status eq Running`. Clauses are
 * `[not] FIELD OP VALUE` joined by `and`/`or`, evaluated left to right without precedence, as LXD
 * does; a value may be quoted with " or ' to hold spaces. FIELD is a JSON path into the object
 * (`config.image.os`: a map's key may hold dots). A string value is a case-insensitive regular
 * expression over the whole field unless it anchors itself; numbers, booleans and string lists
 * (JSON) compare as such.
 */
export interface Clause {
  prevLogical: 'and' | 'or';
  not: boolean;
  field: string;
  operator: string;
  value: string;
}

const OPERATORS = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le']);

export function parseFilter(s: string): Clause[] {
  const parts = s.split(/\s+/).filter(Boolean);
  const out: Clause[] = [];
  let i = 0;
  let prevLogical: Clause['prevLogical'] = 'and';
  const fail = (why: string) => new ApiError(400, `Invalid filter: ${why}`);
  while (i < parts.length) {
    let not = false;
    if (parts[i].toLowerCase() === 'not') {
      not = true;
      if (++i === parts.length) throw fail('incomplete not clause');
    }
    const field = parts[i++];
    if (i === parts.length) throw fail('clause has no operator');
    const operator = parts[i++];
    if (i === parts.length) throw fail('clause has no value');
    let value = parts[i];
    for (const q of ['"', "'"]) {
      if (!value.startsWith(q)) continue;
      if (value.length > 1 && value.endsWith(q)) {
        value = value.slice(1, -1);
        break;
      }
      value = value.slice(1);
      for (;;) {
        if (++i === parts.length) throw fail('unterminated quote');
        if (parts[i].endsWith(q)) break;
        value += ` ${parts[i]}`;
      }
      value += ` ${parts[i].slice(0, -1)}`;
      break;
    }
    i++;
    out.push({ prevLogical, not, field, operator, value });
    if (i < parts.length) {
      const logical = parts[i].toLowerCase();
      if (logical !== 'and' && logical !== 'or') throw fail('invalid clause composition');
      prevLogical = logical;
      if (++i === parts.length) throw fail('unterminated compound clause');
    }
  }
  return out;
}

const isStringMap = (o: unknown): o is Record<string, string> =>
  typeof o === 'object' && o !== null && !Array.isArray(o) && Object.values(o).every((v) => typeof v === 'string');

/**
 * The value at FIELD, as Go's reflection finds it there: an object's key by the first part, and a
 * map of strings (config) by the whole rest as one key, a missing key reading as "".
 */
export function valueOf(obj: unknown, field: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  const o = obj as Record<string, unknown>;
  if (isStringMap(o)) return Object.hasOwn(o, field) ? o[field] : '';
  const dot = field.indexOf('.');
  const key = dot < 0 ? field : field.slice(0, dot);
  if (!Object.hasOwn(o, key)) return undefined;
  return dot < 0 ? o[key] : valueOf(o[key], field.slice(dot + 1));
}

function regexpOf(value: string): RegExp | undefined {
  const src = value.includes('^') || value.includes('$') ? value : `^${value}$`;
  try {
    return new RegExp(src, 'i');
  } catch {
    return undefined;
  }
}

function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function clauseMatches(c: Clause, v: unknown): boolean {
  if (!OPERATORS.has(c.operator)) throw new ApiError(400, `Invalid filter: unsupported operator "${c.operator}"`);
  const ordered = c.operator !== 'eq' && c.operator !== 'ne';
  const bad = () => new ApiError(400, `Invalid filter: invalid value "${c.value}" for field "${c.field}"`);
  let eq: boolean;
  let cmp = 0;
  if (typeof v === 'string') {
    if (ordered) throw new ApiError(400, `Invalid filter: invalid operator "${c.operator}" for field "${c.field}"`);
    const re = regexpOf(c.value);
    eq = re ? re.test(v) : v.toLowerCase() === c.value.toLowerCase();
  } else if (typeof v === 'number') {
    if (!/^[+-]?\d+$/.test(c.value)) throw bad();
    const n = Number(c.value);
    eq = v === n;
    cmp = v - n;
  } else if (typeof v === 'boolean') {
    if (ordered) throw new ApiError(400, `Invalid filter: invalid operator "${c.operator}" for field "${c.field}"`);
    const b = parseBool(c.value);
    if (b === undefined) throw bad();
    eq = v === b;
  } else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
    if (ordered) throw new ApiError(400, `Invalid filter: invalid operator "${c.operator}" for field "${c.field}"`);
    let list: unknown;
    try {
      list = JSON.parse(c.value);
    } catch {
      throw bad();
    }
    eq = Array.isArray(list) && list.length === v.length && list.every((x, i) => x === v[i]);
  } else {
    throw new ApiError(400, `Invalid filter: invalid type for field "${c.field}"`);
  }
  switch (c.operator) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return cmp > 0;
    case 'lt':
      return cmp < 0;
    case 'ge':
      return cmp >= 0;
    default:
      return cmp <= 0;
  }
}

export function matches(obj: unknown, clauses: Clause[]): boolean {
  let match = true;
  for (const c of clauses) {
    let m = clauseMatches(c, valueOf(obj, c.field));
    if (c.not) m = !m;
    match = c.prevLogical === 'and' ? match && m : match || m;
  }
  return match;
}
