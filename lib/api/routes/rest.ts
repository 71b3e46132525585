import { TslxcError } from '../../errors.js';
import { allowsInstance } from '../access.js';
import { ApiError, sync, type ApiRequest, type ApiResult, type Route } from '../types.js';

/**
 * What the resource routes (images, profiles, networks, storage) share: recursion, ETags and
 * If-Match, request bodies checked field by field, and who may change shared objects.
 */

/** `?recursion=N` as LXD reads it: anything but 1 or 2 lists URLs. */
export function recursion(req: ApiRequest): number {
  const r = Number(req.query.get('recursion') ?? '0');
  return r === 1 || r === 2 ? r : 0;
}

/** ETags and If-Match are the server's (lib/api/etag.ts): one rule for every route. */
export { checkIfMatch, etagOf } from '../etag.js';

/** The JSON body, which must be an object. */
export async function body(req: ApiRequest): Promise<Record<string, unknown>> {
  const b = await req.json<unknown>();
  if (b === null || b === undefined) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new ApiError(400, 'The request body must be a JSON object');
  return b as Record<string, unknown>;
}

export function optString(b: Record<string, unknown>, key: string): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `"${key}" must be a string`);
  return v;
}

export function reqString(b: Record<string, unknown>, key: string): string {
  const v = optString(b, key);
  if (!v) throw new ApiError(400, `"${key}" is required`);
  return v;
}

/** A config map: string values only, as in LXD (a number there is the client's mistake). */
export function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `"${what}" must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new ApiError(400, `"${what}.${k}" must be a string`);
    out[k] = x;
  }
  return out;
}

export function deviceMap(v: unknown, what = 'devices'): Record<string, Record<string, string>> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `"${what}" must be an object of devices`);
  const out: Record<string, Record<string, string>> = {};
  for (const [k, d] of Object.entries(v)) out[k] = stringMap(d, `${what}.${k}`) ?? {};
  return out;
}

/**
 * Profiles, networks, pools and images are shared by every instance: a certificate restricted to
 * some instances may read them, never change them.
 */
export function requireUnrestricted(req: ApiRequest): void {
  if (req.identity.instances !== undefined) throw new ApiError(403, 'This certificate is restricted to some instances: it cannot change shared objects');
}

/**
 * The library refuses what a user asked for with a TslxcError; one without a kind, met while
 * applying a client's change, is the request's fault (400), as LXD answers a failed validation.
 */
export async function asClientError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TslxcError && !err.kind) throw new ApiError(400, err.message);
    throw err;
  }
}

/**
 * A sync answer to a create or rename: 201, where the object is now, and no metadata (LXD's
 * answers to other changes carry an empty object: `sync({})`).
 */
export const created = (location: string): ApiResult => sync(null, { status: 201, location });

export const enc = encodeURIComponent;

/** The instance URLs in a used_by list a caller may see (a restricted certificate sees its own only). */
export function instanceUrls(req: ApiRequest, names: string[]): string[] {
  return names.filter((n) => allowsInstance(req.identity, n)).map((n) => `/1.0/instances/${enc(n)}`);
}

/**
 * The rename and delete routes every named object shares (profiles, networks, pools, aliases):
 * an unrestricted caller, the library's call, the lifecycle event `KIND-renamed` / `KIND-deleted`,
 * and LXD's answer (201 with where the object is now; an empty object).
 */
export interface NamedObject {
  /** the route's path, its last parameter the object's name: '/1.0/profiles/{name}' */
  path: string;
  /** the lifecycle events' prefix: 'profile' */
  kind: string;
  url(name: string): string;
}

export function renameRoute(o: NamedObject, rename: (req: ApiRequest, from: string, to: string) => Promise<unknown>): Route {
  return {
    method: 'POST',
    path: o.path,
    async handler(req) {
      requireUnrestricted(req);
      const from = lastParam(req, o);
      const to = reqString(await body(req), 'name');
      await asClientError(() => rename(req, from, to));
      req.events.lifecycle(`${o.kind}-renamed`, o.url(to), { old_name: from });
      return created(o.url(to));
    },
  };
}

export function deleteRoute(o: NamedObject, remove: (req: ApiRequest, name: string) => Promise<unknown>): Route {
  return {
    method: 'DELETE',
    path: o.path,
    async handler(req) {
      requireUnrestricted(req);
      const name = lastParam(req, o);
      await asClientError(() => remove(req, name));
      req.events.lifecycle(`${o.kind}-deleted`, o.url(name));
      return sync({});
    },
  };
}

const lastParam = (req: ApiRequest, o: NamedObject) => req.params[/\{(\w+)\}$/.exec(o.path)![1]!]!;
