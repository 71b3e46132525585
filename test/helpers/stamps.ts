import fs from 'node:fs';
import path from 'node:path';

/**
 * Every entry under each of DIRS (missing ones skipped), down to DEPTH levels, as "PATH INODE MTIME
 * CTIME" in nanoseconds, sorted: two calls that return the same list saw nothing written or replaced.
 */
export function entryStamps(dirs: string[], depth = Infinity): string[] {
  const out: string[] = [];
  const walk = (dir: string, left: number) => {
    for (const e of fs.readdirSync(dir)) {
      const p = path.join(dir, e);
      const st = fs.lstatSync(p, { bigint: true });
      out.push(`${p} ${st.ino} ${st.mtimeNs} ${st.ctimeNs}`);
      if (left > 1 && st.isDirectory()) walk(p, left - 1);
    }
  };
  for (const dir of dirs) if (fs.existsSync(dir)) walk(dir, depth);
  return out.sort();
}
