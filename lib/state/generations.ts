import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from './paths.js';

/**
 * State generations: what tells a start plan (instance/plan.ts) that the state it was computed
 * from is still the state now, without reading that state again.
 *
 * Every write through the config store (a container's config, a profile, a network, a pool, a
 * volume, an image) ends by bumping the generation of its scope: a file under
 * RUN_DIR/generations/ gets a token no other write ever gets. A start reads the generations of
 * the scopes it depends on before it reads their state, and the plan records them; the native
 * replay compares them (one small read each), and any difference sends the start to node.
 *
 * Why one generation per scope and not one counter for everything: a start writes its own
 * container's config (its status, its allocated addresses), and `config set` on one container
 * or `profile set` on a profile it does not use must not cost every other container its plan.
 * Why tokens and not counters: two writers bumping at once could both write N+1, or a slow one
 * put N back; a token written once can never be mistaken for another, so equality is enough.
 * Why the run dir: plans live there too, so a reboot forgets both together, and a bump costs no
 * fsync (tmpfs).
 *
 * A write is bumped after it is in place: a reader that saw the new generation reads the new
 * state. Files changed behind tslxc's back (by hand) bump nothing: state is edited through tslxc
 * (`config edit`, `profile edit`), as in LXD.
 */

/** The scopes a start may depend on. Names are validated where they are made (no "/" or "..". */
export const scope = {
  container: (name: string) => `container/${name}`,
  profile: (name: string) => `profile/${name}`,
  network: (name: string) => `network/${name}`,
  pool: (name: string) => `pool/${name}`,
  volume: (pool: string, volume: string) => `volume/${pool}/${volume}`,
  image: (fingerprint: string) => `image/${fingerprint}`,
  /** Addresses containers claim in their configs (static or allocated): a nic's start checks them all. */
  addresses: () => 'addresses',
};

const SAFE = /^[a-z]+(?:\/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}$/;

export function generationFile(p: Paths, which: string): string {
  if (!SAFE.test(which) || which.includes('..')) throw new Error(`bad generation scope ${JSON.stringify(which)}`);
  return path.join(p.runDir, 'generations', which);
}

let sequence = 0;
/** Tokens this process wrote, each with the scope whose write caused it: a start tells its own writes from others'. */
const ownTokens = new Map<string, string>();

/** Mark a scope changed (because `cause` was written: by default, itself); returns the new token. */
export function bumpGeneration(p: Paths, which: string, cause = which): string {
  const token = `${process.pid}.${Date.now()}.${++sequence}`;
  const file = generationFile(p, which);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, token, { mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, token, { mode: 0o600 });
  }
  fs.renameSync(tmp, file);
  ownTokens.set(token, cause);
  return token;
}

/** The scope's generation now; "" for one never written since the run dir was made. */
export function readGeneration(p: Paths, which: string): string {
  try {
    return fs.readFileSync(generationFile(p, which), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Whether this process wrote the token, because `cause` was written. */
export const writtenHere = (token: string, cause: string) => ownTokens.get(token) === cause;

/**
 * The generations one start depends on, read before the state they cover. `settle` reads them
 * again once the start is done: a scope another command changed meanwhile means the start may
 * have used a mix of old and new state, so it gets no plan. Only a token this process wrote
 * because of the start's own writes (its container's config, under its lock: the status, the
 * addresses it allocated) is taken as the new generation.
 */
export class GenerationSnapshot {
  private readonly seen = new Map<string, string>();

  constructor(private readonly p: Paths) {}

  read(...scopes: string[]): void {
    for (const s of scopes) if (!this.seen.has(s)) this.seen.set(s, readGeneration(this.p, s));
  }

  /** The generations to record, or why there are none. */
  settle(ownWrites: string): { generations: Array<[string, string]> } | { changed: string } {
    const out: Array<[string, string]> = [];
    for (const [s, before] of [...this.seen].sort()) {
      const now = readGeneration(this.p, s);
      if (now !== before && !writtenHere(now, ownWrites)) return { changed: s };
      out.push([s, now]);
    }
    return { generations: out };
  }
}
