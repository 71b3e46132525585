import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { validateAlias } from '../util/names.js';
import { imagesDir, type Paths } from '../state/paths.js';
import { helperPath } from '../state/helper.js';
import { isSquashfs, listStored, sha256Of, storeCopy, type ImportPass } from './archive.js';
import { adoptEarlyPass, earlyImportPass, stagePrefix, startHelperPass, writeImportPlan } from './pass.js';

/**
 * The first part of `image import` (lxd.ts importImage does the rest): the files checked, a stage
 * dir in the store, and for a unified tarball its pass (pass.ts: the file stored by the kernel's
 * copy, then that copy hashed and listed at once). The CLI's native front may have started that
 * pass before node did; then it is adopted here. Apart from lxd.ts and what it loads, so that the
 * CLI starts the pass first and loads the rest of the import while it runs.
 */
export interface BegunImport {
  stage: string;
  /** stage/original: the files as stored */
  orig: string;
  /** their names there: meta.EXT (the tarball, or the metadata tarball) and rootfs.EXT */
  kept: string[];
  stored: string[];
  /** a unified tarball's pass, running */
  pass?: ImportPass;
}

export function beginImport(p: Paths, file: string, rootfsFile: string | undefined, aliases: string[]): BegunImport {
  // First, so that whatever is refused below leaves nothing of the front's pass either.
  const early = adoptEarlyPass(p, file, rootfsFile);
  try {
    for (const f of [file, rootfsFile].filter((x): x is string => !!x)) {
      if (!fs.existsSync(f) || !fs.statSync(f).isFile()) throw new TslxcError(`Cannot import ${f}`, 'no such file');
    }
    aliases.forEach(validateAlias);
  } catch (err) {
    early?.discard();
    throw err;
  }
  const files = rootfsFile ? [file, rootfsFile] : [file];
  const kept = files.map((f, i) => (i === 0 ? `meta${ext(f)}` : `rootfs${ext(f)}`));
  if (early) {
    const orig = path.join(early.stage, 'original');
    const stored = [path.join(orig, kept[0]!)];
    // For the next import's front; after this one has begun, so it costs this one nothing.
    setImmediate(() => writeImportPlanQuietly(p));
    tellWhichPass('front');
    return { stage: early.stage, orig, kept, stored, pass: earlyImportPass(early, stored[0]!, path.basename(file)) };
  }
  mkdirp(imagesDir(p), 0o700);
  // In the store's dir (one filesystem, so the files are renamed into the image, not copied
  // again); named like addImage's temp dirs, so what a killed import leaves is swept.
  const stage = `${stagePrefix(p)}${crypto.randomBytes(4).toString('hex')}-${process.pid}`;
  fs.mkdirSync(stage, { mode: 0o700 });
  const orig = path.join(stage, 'original');
  const stored = kept.map((k) => path.join(orig, k));
  try {
    fs.mkdirSync(orig, { mode: 0o700 });
    return { stage, orig, kept, stored, pass: rootfsFile ? undefined : startPass(p, file, stored[0]!) };
  } catch (err) {
    fs.rmSync(stage, { recursive: true, force: true });
    throw err;
  }
}

function writeImportPlanQuietly(p: Paths): void {
  try {
    writeImportPlan(p);
  } catch {
    /* only the next import's head start is lost */
  }
}

function startPass(p: Paths, file: string, dest: string): ImportPass {
  const what = path.basename(file);
  // The helper's pass where it is built (its 1 MiB pipe, and the plan written for the front).
  const viaHelper = helperBuilt() ? startHelperPassOrNot(p, file, dest, what) : undefined;
  if (viaHelper) {
    tellWhichPass('helper');
    return viaHelper;
  }
  tellWhichPass('node');
  // The kernel copies, then a hash and a listing of the stored copy run side by side.
  const stored = storeCopy(file, dest, what);
  const sha256 = stored.then(() => sha256Of([dest]));
  const listed = stored.then(() => listStored(dest, what));
  // Awaited by result(); until then a failure must not count as unhandled.
  for (const x of [sha256, listed]) x.catch(() => undefined);
  return {
    async result() {
      const [entries, sum] = await Promise.all([listed, sha256]);
      if (!entries)
        throw new TslxcError(`Cannot read ${what}`, 'it is a squashfs image, not a tar archive — the file is corrupt, truncated or not a tar archive');
      return { entries, sha256: sum };
    },
  };
}

/** TSLXC_PLAN_DEBUG=1 (as for start plans): which way the pass went, for the tests. */
function tellWhichPass(how: 'front' | 'helper' | 'node'): void {
  if (process.env.TSLXC_PLAN_DEBUG === '1') process.stderr.write(`tslxc: import pass: ${how}\n`);
}

/** Undefined when its plan cannot be written (a run dir not ours to write): node's own processes then. */
function startHelperPassOrNot(p: Paths, file: string, dest: string, what: string): ImportPass | undefined {
  try {
    return startHelperPass(p, file, dest, what);
  } catch {
    return undefined;
  }
}

function helperBuilt(): boolean {
  try {
    helperPath();
    return true;
  } catch {
    return false;
  }
}

/** The extension a stored file keeps (its export gives it back under the same one). */
export function ext(f: string): string {
  const m = /(\.tar(\.(gz|xz|zst|bz2))?|\.t[gx]z|\.squashfs|\.sqfs)$/.exec(path.basename(f));
  if (m) return m[1]!;
  return isSquashfs(f) ? '.squashfs' : '.tar';
}
