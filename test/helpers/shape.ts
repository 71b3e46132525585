import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/**
 * Shapes of API answers: what the differential tests compare between tslxc and LXD 5.0.2, since
 * the values differ (names, times, fingerprints) but a client breaks on a missing key or a number
 * where it expects a string.
 *
 * A shape is JSON: 'string' | 'time' (an RFC 3339 string) | 'number' | 'boolean' | 'null', an
 * array holding the shape of its first element ([] when empty: any array), an object of shapes by
 * key, or a map `{"{map}": shape}` for objects whose keys are data (config, devices, state.network,
 * resources, ...): its values are compared, never its keys. 'any' matches everything.
 */
export type Shape = string | Shape[] | { [key: string]: Shape };

export const MAP = '{map}';
export const ANY = 'any';

/**
 * Keys whose objects are keyed by data, not by schema. `devices` maps a device name to its config,
 * itself a map.
 */
const MAP_KEYS = new Set([
  'config',
  'expanded_config',
  'devices',
  'expanded_devices',
  'network',
  'disk',
  'resources',
  'fds',
  'properties',
  'context',
  'requestor_context',
]);
const MAP_OF_MAPS = new Set(['devices', 'expanded_devices']);

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** The shape of a JSON value; `key` is the key it sits under (it decides maps). */
export function shapeOf(value: unknown, key?: string): Shape {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return RFC3339.test(value) ? 'time' : 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) return value.length ? [shapeOf(value[0])] : [];
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (key !== undefined && MAP_KEYS.has(key) && !(key === 'network' && isNetworkObject(obj))) {
      return { [MAP]: mapValueShape(obj, MAP_OF_MAPS.has(key)) };
    }
    const out: Record<string, Shape> = {};
    for (const k of Object.keys(obj).sort()) out[k] = shapeOf(obj[k], k);
    return out;
  }
  return typeof value;
}

/**
 * `network` is a map in an instance's state (interface name -> state) but, as a string, a NIC
 * device's key; an object with schema keys (none so far) would not be a map.
 */
function isNetworkObject(obj: Record<string, unknown>): boolean {
  return 'addresses' in obj && 'counters' in obj;
}

/** One shape for every value of a map: theirs if they agree, 'any' if they do not (or it is empty). */
function mapValueShape(obj: Record<string, unknown>, valuesAreMaps: boolean): Shape {
  const shapes = Object.values(obj).map((v) =>
    valuesAreMaps && v && typeof v === 'object' && !Array.isArray(v) ? { [MAP]: mapValueShape(v as Record<string, unknown>, false) } : shapeOf(v),
  );
  if (!shapes.length) return ANY;
  const first = JSON.stringify(shapes[0]);
  if (shapes.every((s) => JSON.stringify(s) === first)) return shapes[0];
  // Strings and times mixed (a config holding a date): a string map.
  if (shapes.every((s) => s === 'string' || s === 'time')) return 'string';
  return ANY;
}

export interface ShapeOptions {
  /** Keys ours has and the golden lacks are fine (tslxc's additions). */
  allowExtra?: boolean;
  /** Paths (as in the diff: `metadata[].state.pid`) not compared. */
  ignore?: string[];
}

/**
 * The differences between two shapes, one readable line each ("missing key a.b", "extra key c",
 * "wrong type at a.b.c: number, LXD has string"); empty when they match.
 */
export function compareShapes(ours: Shape, golden: Shape, opts: ShapeOptions = {}, at = ''): string[] {
  const where = at || '(top)';
  if (opts.ignore?.includes(at)) return [];
  if (golden === ANY || ours === ANY) return [];
  if (typeof golden === 'string' || typeof ours === 'string') {
    if (ours === golden) return [];
    // A string of ours that looks like a time where LXD has a plain string is still a string.
    if (ours === 'time' && golden === 'string') return [];
    return [`wrong type at ${where}: ${describe(ours)}, LXD has ${describe(golden)}`];
  }
  if (Array.isArray(golden) || Array.isArray(ours)) {
    if (!Array.isArray(golden) || !Array.isArray(ours)) return [`wrong type at ${where}: ${describe(ours)}, LXD has ${describe(golden)}`];
    if (!golden.length || !ours.length) return [];
    return compareShapes(ours[0], golden[0], opts, `${at}[]`);
  }
  const gMap = MAP in golden;
  const oMap = MAP in ours;
  if (gMap || oMap) {
    if (!(gMap && oMap)) return [`wrong type at ${where}: ${oMap ? 'a map' : 'an object'}, LXD has ${gMap ? 'a map' : 'an object'}`];
    return compareShapes(ours[MAP], golden[MAP], opts, `${at}.*`);
  }
  const diffs: string[] = [];
  const prefix = at ? `${at}.` : '';
  for (const k of Object.keys(golden)) {
    if (!(k in ours)) {
      if (!opts.ignore?.includes(prefix + k)) diffs.push(`missing key ${prefix}${k} (LXD: ${describe(golden[k])})`);
    } else diffs.push(...compareShapes(ours[k], golden[k], opts, prefix + k));
  }
  if (!opts.allowExtra) {
    for (const k of Object.keys(ours)) {
      if (!(k in golden) && !opts.ignore?.includes(prefix + k)) diffs.push(`extra key ${prefix}${k} (${describe(ours[k])})`);
    }
  }
  return diffs;
}

function describe(s: Shape): string {
  if (typeof s === 'string') return s;
  if (Array.isArray(s)) return 'an array';
  return MAP in s ? 'a map' : 'an object';
}

/** Fails the test with one line per difference between our value's shape and LXD's. */
export function assertSameShape(t: ExecutionContext, ours: unknown, golden: Shape, opts: ShapeOptions = {}): void {
  const diffs = compareShapes(shapeOf(ours), golden, opts);
  if (diffs.length) t.fail(`shape differs from LXD 5.0.2's:\n  ${diffs.join('\n  ')}`);
  else t.pass();
}

/** One recorded answer of LXD 5.0.2 (bench/lxd-shapes.ts writes them). */
export interface Golden {
  request: string;
  http_status: number;
  /** Response headers worth checking (ETag, Location), by lower-case name: present or not. */
  headers: string[];
  /** The shape of the whole body (the envelope; an event for the events). */
  shape: Shape;
}

export const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/lxd-5.0.2');

export function loadGolden(name: string): Golden {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `${name}.json`), 'utf8')) as Golden;
}

/** The shape of a golden answer's `metadata` (what a route's handler returns). */
export function goldenMetadata(name: string): Shape {
  const s = loadGolden(name).shape;
  if (typeof s !== 'object' || Array.isArray(s) || !('metadata' in s)) throw new Error(`golden ${name} has no metadata`);
  return s.metadata;
}
