import fs from 'node:fs';
import { TslxcError } from '../../errors.js';
import { findTool, run } from '../../util/exec.js';
import type { PoolConfig } from '../pool.js';
import type { Usage } from './types.js';

/** What every driver shares: a pool's usage from statfs, and writes into a pool that say when it is full. */
export function statfsUsage(dir: string): Usage {
  try {
    const s = fs.statfsSync(dir);
    return { size: s.blocks * s.bsize, free: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize };
  } catch {
    return {};
  }
}

/**
 * A command writing into a pool: when any line of its output says the pool is full (tar reports
 * it early, then a generic failure), the error says so.
 */
export async function runOnPool(pool: PoolConfig, cmd: string, args: string[], what: string): Promise<void> {
  let full = '';
  try {
    // setpriv --pdeathsig: a copy whose tslxc is killed stops too, instead of writing on into a dir the next run sweeps.
    const [c, a] = findTool('setpriv') ? ['setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
    await run(c, a, {
      what,
      onLine: (l) => {
        if (!full && /No space left|ENOSPC|Disk quota exceeded|Wrote only \d+ of \d+ bytes/i.test(l)) full = l;
      },
    });
  } catch (err) {
    throw poolError({ pool }, full ? new TslxcError(what, full) : err);
  }
}

/** ENOSPC on a full loop file: say so, and what to do. */
export function poolError(t: { pool: PoolConfig }, err: unknown): Error {
  const msg = (err as Error).message ?? String(err);
  if (/No space left|ENOSPC|Wrote only \d+ of \d+ bytes/i.test(msg)) {
    return new TslxcError(`Storage pool "${t.pool.name}" is full`, msg, `grow it with "tslxc storage set ${t.pool.name} size=..."`);
  }
  return err as Error;
}
