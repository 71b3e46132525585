import type { Method, Route } from './types.js';

/**
 * Matches a request to a route: path patterns with `{name}` segments, as LXD's mux. Segments are
 * compared decoded, so an instance name or a snapshot with an escaped character still matches.
 */
interface Compiled {
  route: Route;
  segments: Array<{ literal: string } | { param: string }>;
}

export type Match = { route: Route; params: Record<string, string> } | { status: 404 | 405; allowed?: Method[] };

function split(path: string): string[] | undefined {
  const parts = path.split('/').slice(1);
  // "/1.0/" is "/1.0": LXD's mux answers both.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

export class Router {
  private readonly compiled: Compiled[];

  constructor(routes: readonly Route[]) {
    this.compiled = routes.map((route) => ({
      route,
      segments: route.path
        .split('/')
        .slice(1)
        .map((s) => (s.startsWith('{') && s.endsWith('}') ? { param: s.slice(1, -1) } : { literal: s })),
    }));
  }

  /** `path` is the raw pathname (still percent-encoded). */
  match(method: string, path: string): Match {
    const parts = split(path);
    if (!parts) return { status: 404 };
    const allowed: Method[] = [];
    for (const c of this.compiled) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const s = c.segments[i]!;
        if ('literal' in s) ok = s.literal === parts[i];
        else if (parts[i] === '') ok = false;
        else params[s.param] = parts[i]!;
      }
      if (!ok) continue;
      if (c.route.method === method) return { route: c.route, params };
      allowed.push(c.route.method);
    }
    return allowed.length ? { status: 405, allowed } : { status: 404 };
  }
}
