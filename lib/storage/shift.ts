import fs from 'node:fs';
import path from 'node:path';
import { toContainer, toHost, type IdMap, type IdRange } from '../config/idmap.js';

/**
 * Shifting file ownership on disk: the fallback for a filesystem that cannot be idmapped. The tree
 * holds the ids of map `from` (undefined: the container's own ids, unshifted) and is rewritten to
 * those of map `to` (undefined: unshift). Only one filesystem is walked (mount points are not
 * crossed); symlinks are chowned themselves (lchown), never followed. chown(2) clears the set-id
 * bits of a file, so they are put back. What is not rewritten: uids inside POSIX ACL entries and the
 * root id of v3 file capabilities (xattrs) — such files keep the old ids there.
 */
export interface ShiftResult {
  inodes: number;
  changed: number;
}

function convert(id: number, from: IdRange[] | undefined, to: IdRange[] | undefined): number {
  // On disk → the container's id → on disk again. An id the old map does not hold (nobody's) stays.
  const inside = from ? toContainer(from, id) : id;
  if (inside === undefined) return id;
  const out = to ? toHost(to, inside) : inside;
  return out ?? id;
}

export function shiftTree(root: string, from: IdMap | undefined, to: IdMap | undefined): ShiftResult {
  const res: ShiftResult = { inodes: 0, changed: 0 };
  const top = fs.lstatSync(root);
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    const st = fs.lstatSync(p);
    res.inodes++;
    const uid = convert(st.uid, from?.uid, to?.uid);
    const gid = convert(st.gid, from?.gid, to?.gid);
    if (uid !== st.uid || gid !== st.gid) {
      fs.lchownSync(p, uid, gid);
      if (!st.isSymbolicLink() && st.mode & 0o6000) fs.chmodSync(p, st.mode & 0o7777);
      res.changed++;
    }
    if (st.isDirectory() && st.dev === top.dev) for (const e of fs.readdirSync(p)) stack.push(path.join(p, e));
  }
  return res;
}

/** Whether two maps (or "unshifted") are the same. */
export function sameMap(a: IdMap | undefined, b: IdMap | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
