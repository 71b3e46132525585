import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { requireTool, run } from '../util/exec.js';
import type { Paths } from '../state/paths.js';
import { getImage, type Image } from './store.js';

/**
 * Image layers. A base image's rootfs/ is a whole tree. A child image (built `from:` a parent, or
 * published from an overlay container) whose metadata says `tslxc.layer: true` holds in rootfs/
 * only what differs from its parent, in overlayfs's own upper-dir format: new and changed files,
 * a whiteout (a character device 0/0) for each deleted name, and an opaque dir (xattr
 * trusted.overlay.opaque=y) for a directory replaced whole. The image's tree is its stack of
 * layers, top first, down to the first whole one: the overlay driver mounts that stack as a
 * container's lower dirs; the btrfs driver applies each layer to a snapshot of its parent's
 * subvolume; the dir driver and `image export` copy the merged view.
 */

/**
 * The deepest stack a layered image may have. overlayfs takes its options in one page, and the
 * helper passes the layers relative to the store (~72 bytes each): 32 leaves room to spare. A
 * child that would be deeper is stored whole (with its parent still recorded).
 */
export const MAX_LAYERS = 32;

export const OPAQUE = 'trusted.overlay.opaque';

export function isLayer(img: Image): boolean {
  return img.metadata.tslxc?.layer === true;
}

/** The image and the images under it whose layers make up its tree, top first. */
export function layerChain(p: Paths, img: Image): Image[] {
  const chain = [img];
  for (let cur = img; isLayer(cur);) {
    const fp = cur.metadata.tslxc?.parent;
    const parent = fp ? getImage(p, fp) : undefined;
    if (!parent) {
      throw new TslxcError(
        `Cannot use image ${img.fingerprint.slice(0, 12)}`,
        `it is stored as a layer over ${fp ? fp.slice(0, 12) : 'its parent'}, which is not in the image store`,
        'pull or import the parent image again',
      );
    }
    if (chain.some((i) => i.fingerprint === parent.fingerprint) || chain.length >= MAX_LAYERS) {
      throw new TslxcError(`Cannot use image ${img.fingerprint.slice(0, 12)}`, `its layers loop or are more than ${MAX_LAYERS} deep`);
    }
    chain.push(parent);
    cur = parent;
  }
  return chain;
}

/** The layer dirs of an image, top first (one dir for a whole image). */
export function layerDirs(p: Paths, img: Image): string[] {
  return layerChain(p, img).map((i) => i.rootfs);
}

/** How many layers a child of `img` would stack: beyond MAX_LAYERS it is stored whole. */
export function canLayerOn(p: Paths, img: Image): boolean {
  return layerChain(p, img).length < MAX_LAYERS;
}

export interface OverlaySpec {
  /** top first */
  lowers: string[];
  /** with an upper (and its work dir) the view is writable and changes land in the upper */
  upper?: string;
  work?: string;
}

export type Runner = (cmd: string, args: string[], what: string) => Promise<void>;
export const plainRunner: Runner = (cmd, args, what) => run(cmd, args, { what });

function commonDir(dirs: string[]): string {
  let common = dirs[0].split('/');
  for (const d of dirs.slice(1)) {
    const parts = d.split('/');
    let k = 0;
    while (k < common.length && k < parts.length && common[k] === parts[k]) k++;
    common = common.slice(0, k);
  }
  return common.join('/') || '/';
}

/**
 * Runs `cmd args` with the layers merged at `mnt` (an existing empty dir) in a mount namespace
 * of its own, made private first: the mount lives and dies with the command, the host never
 * sees it. Lower layers are given relative to their common dir (overlayfs takes its options in
 * one page); paths holding ",", ":" or "\" are refused, not escaped.
 */
export async function runOnOverlay(spec: OverlaySpec, mnt: string, cmd: string, args: string[], what: string, runner: Runner = plainRunner): Promise<void> {
  const all = [...spec.lowers, ...(spec.upper ? [spec.upper, spec.work ?? ''] : [])];
  for (const d of all) if (!path.isAbsolute(d) || /[,:\\]/.test(d)) throw new TslxcError(what, `layer path "${d}" must be absolute without ",", ":" or "\\"`);
  if (!spec.lowers.length) throw new TslxcError(what, 'no layer to mount');
  const unshare = requireTool('unshare', 'mount image layers');
  const base = commonDir(spec.lowers.map((l) => path.dirname(l)));
  const rel = spec.lowers.map((l) => path.relative(base, l) || '.');
  let opts = '';
  if (spec.upper) opts = `lowerdir=${rel.join(':')},upperdir=${spec.upper},workdir=${spec.work}`;
  else if (rel.length > 1) opts = `ro,lowerdir=${rel.join(':')}`;
  // One whole layer and nothing to write: a read-only bind of it is its view.
  const script =
    'cd "$1" || exit 1; if [ -n "$2" ]; then mount -t overlay tslxc-layers -o "$2" "$3"; else mount --bind -o ro "$4" "$3"; fi || exit 1; shift 4; exec "$@"';
  await runner(unshare, ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', base, opts, mnt, spec.lowers[0], cmd, ...args], what);
}

/**
 * overlayfs's own xattrs in a tree (getfattr -R), as relative path → name → hex value. Whiteouts
 * are device nodes and need no xattr; opaque dirs carry trusted.overlay.opaque; the kernel also
 * leaves bookkeeping (origin, impure) that means nothing outside the mount it was made in.
 */
export function overlayXattrs(dir: string): Map<string, Map<string, string>> {
  const getfattr = requireTool('getfattr', 'read image layers');
  const r = spawnSync(getfattr, ['-R', '-P', '--absolute-names', '-m', '^trusted\\.overlay\\.', '-d', '-e', 'hex', dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0 && !r.stdout) throw new TslxcError(`Cannot read the layer ${dir}`, (r.stderr || `getfattr exit ${r.status}`).trim().split('\n')[0]);
  const out = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const file = unescapeGetfattr(line.slice(8));
      cur = new Map();
      out.set(path.relative(dir, file), cur);
    } else if (cur && /^trusted\.overlay\.[^=]+=/.test(line)) {
      const i = line.indexOf('=');
      cur.set(line.slice(0, i), line.slice(i + 1));
    }
  }
  return out;
}

/** getfattr writes unusual bytes of a name as \ooo and a backslash as \\. */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

const isWhiteout = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

async function removeXattr(file: string, name: string): Promise<void> {
  await run(requireTool('setfattr', 'clean an image layer'), ['-h', '-x', name, file], { what: `Cannot remove ${name} from ${file}` });
}

/**
 * A layer as stored: overlayfs's bookkeeping xattrs removed (origin file handles, impure
 * markers: they describe the mount the layer was made in), only opaque markers kept. A layer
 * from elsewhere (a registry) may also carry redirect or metacopy xattrs, which could make the
 * kernel read another layer's file: those are removed too.
 */
export async function cleanLayer(dir: string): Promise<void> {
  for (const [rel, names] of overlayXattrs(dir)) {
    for (const [name, value] of names) {
      if (name === OPAQUE && value === '0x79') continue;
      await removeXattr(path.join(dir, rel), name);
    }
  }
}

/**
 * Applies a layer to a whole tree in place (a writable snapshot of the parent's tree), so that
 * the tree becomes the layer's merged view: whiteouts delete, opaque dirs replace, everything
 * else is copied over. Every name the layer holds is first removed from the tree where it would
 * clash (a file where the layer has a dir, anything where the layer has a file, an opaque dir's
 * old contents), walking only real dirs of the tree, so no symlink in it is ever followed.
 */
export async function applyLayer(layer: string, tree: string, runner: Runner = plainRunner): Promise<void> {
  const xattrs = overlayXattrs(layer);
  const opaque = new Set([...xattrs].filter(([, m]) => m.get(OPAQUE) === '0x79').map(([f]) => f));
  const whiteouts: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(layer, rel))) {
      const r = path.join(rel, e);
      const st = fs.lstatSync(path.join(layer, r));
      const dst = path.join(tree, r);
      let dt: fs.Stats | undefined;
      try {
        dt = fs.lstatSync(dst);
      } catch {
        dt = undefined;
      }
      if (isWhiteout(st)) {
        whiteouts.push(r);
        if (dt) fs.rmSync(dst, { recursive: true, force: true });
      } else if (st.isDirectory()) {
        if (dt && (!dt.isDirectory() || opaque.has(r))) fs.rmSync(dst, { recursive: true, force: true });
        walk(r);
      } else if (dt) {
        fs.rmSync(dst, { recursive: true, force: true });
      }
    }
  };
  walk('');
  await runner('cp', ['-a', '--reflink=auto', `${layer}/.`, tree], `Cannot apply layer ${layer}`);
  // The copy brought the layer's markers along: they mean nothing in a whole tree. Removing a
  // whiteout touches its dir: the dir gets the layer's times back (to the nanosecond).
  for (const w of whiteouts) fs.rmSync(path.join(tree, w), { force: true });
  for (const dir of new Set(whiteouts.map((w) => path.dirname(w)))) {
    await run('touch', ['-h', '-r', path.join(layer, dir), path.join(tree, dir)], { what: `Cannot set the times of ${dir}` });
  }
  for (const [rel, names] of xattrs) for (const name of names.keys()) await removeXattr(path.join(tree, rel), name);
}
