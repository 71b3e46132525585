import fs from 'node:fs';
import path from 'node:path';
import { isErrno, TslxcError } from '../errors.js';
import type { Image } from '../image/store.js';
import { isLayer } from '../image/layers.js';
import type { Context } from '../state/context.js';
import { helperError, runHelper, type HelperResult } from '../state/helper.js';
import { liveness, requireInstance } from '../state/runtime.js';
import { hostAccess } from '../storage/instance.js';
import { resolveInRoot } from '../util/rootfs.js';
import { ensureKeypair } from './keys.js';
import { formatKey, parseAuthorizedKeys, type PublicKey } from './pubkey.js';

/**
 * Users' ~/.ssh/authorized_keys inside a container, running or stopped, on every storage driver.
 * Every access goes through the native helper's `file` mode, which resolves paths inside the
 * container's root (its mount namespace when running; a chroot of its own, overlay mounted there,
 * when stopped). Reads and writes of a user's files run with that user's uid and gid
 * (`--as-user`): the kernel, not tslxc, decides what the user's symlinks may reach. Owners are
 * the ids of the container's /etc/passwd, as they are on disk (the ids file push writes).
 */
export interface PasswdEntry {
  user: string;
  uid: number;
  gid: number;
  home: string;
}

/** The helper's options that put it in the container's root, whatever its state and driver. */
function rootArgs(ctx: Context, name: string): string[] {
  const live = liveness(ctx.paths, name);
  if (live.initAlive) return ['--pid', String(live.files.init!.pid)];
  const acc = hostAccess(ctx, name);
  return acc.helperArgs ?? ['--rootfs', acc.root];
}

function helperFile(args: string[], input?: string): Promise<HelperResult> {
  return runHelper(['file', ...args], { input: input ?? '' });
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    out.push({ user: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] });
  }
  return out;
}

/** A user of the container by name (or uid), from its own /etc/passwd. */
export async function lookupUser(ctx: Context, name: string, user: string): Promise<PasswdEntry> {
  const r = await helperFile([...rootArgs(ctx, name), '--read', '/etc/passwd']);
  if (r.code !== 0) throw new TslxcError(`Cannot read /etc/passwd of "${name}"`, helperError(r.stderr));
  const entries = parsePasswd(r.stdout);
  const entry = entries.find((e) => e.user === user) ?? (/^\d+$/.test(user) ? entries.find((e) => e.uid === Number(user)) : undefined);
  if (!entry)
    throw new TslxcError(
      `No user "${user}" in "${name}"`,
      "it is not in the container's /etc/passwd",
      `create it first (tslxc exec ${name} -- useradd -m ${user})`,
    );
  if (!entry.home.startsWith('/') || entry.home === '/') {
    throw new TslxcError(`Cannot manage SSH keys of "${user}" in "${name}"`, `its home in /etc/passwd is "${entry.home}"`, 'give the user a home directory');
  }
  return entry;
}

const authorizedKeysPath = (u: PasswdEntry) => path.posix.join(u.home, '.ssh', 'authorized_keys');

export async function readAuthorizedKeys(ctx: Context, name: string, u: PasswdEntry): Promise<string> {
  const file = authorizedKeysPath(u);
  const r = await helperFile([...rootArgs(ctx, name), '--read', file, '--as-user', '--uid', String(u.uid), '--gid', String(u.gid)]);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return '';
  throw new TslxcError(`Cannot read ${file} in "${name}"`, helperError(r.stderr));
}

async function writeAuthorizedKeys(ctx: Context, name: string, u: PasswdEntry, content: string): Promise<void> {
  const file = authorizedKeysPath(u);
  const args = [
    ...rootArgs(ctx, name),
    '--write',
    file,
    '--mode',
    '600',
    '--mkdir',
    '--mkdir-mode',
    '700',
    '--as-user',
    '--uid',
    String(u.uid),
    '--gid',
    String(u.gid),
  ];
  const r = await helperFile(args, content);
  if (r.code !== 0) throw new TslxcError(`Cannot write ${file} in "${name}"`, helperError(r.stderr), `check that ${u.user} owns ${u.home}`);
}

/** Appends the keys the file lacks (compared by key, not comment); returns those added. */
export async function addAuthorizedKeys(ctx: Context, name: string, user: string, keys: PublicKey[]): Promise<PublicKey[]> {
  requireInstance(ctx.paths, name);
  return ctx.withInstanceLock(name, () => addLocked(ctx, name, user, keys));
}

async function addLocked(ctx: Context, name: string, user: string, keys: PublicKey[], known?: { u: PasswdEntry; current: string }): Promise<PublicKey[]> {
  const u = known?.u ?? (await lookupUser(ctx, name, user));
  const current = known ? known.current : await readAuthorizedKeys(ctx, name, u);
  const have = new Set(parseAuthorizedKeys(current).flatMap((l) => (l.key ? [l.key.base64] : [])));
  const added = keys.filter((k) => !have.has(k.base64) && have.add(k.base64));
  if (added.length === 0) return [];
  const base = current === '' || current.endsWith('\n') ? current : `${current}\n`;
  await writeAuthorizedKeys(ctx, name, u, base + added.map((k) => `${formatKey(k)}\n`).join(''));
  return added;
}

export async function listAuthorizedKeys(ctx: Context, name: string, user: string): Promise<PublicKey[]> {
  requireInstance(ctx.paths, name);
  const u = await lookupUser(ctx, name, user);
  return parseAuthorizedKeys(await readAuthorizedKeys(ctx, name, u)).flatMap((l) => (l.key ? [l.key] : []));
}

/** Removes the keys matching a fingerprint, a comment or a whole key; returns those removed. */
export async function removeAuthorizedKeys(ctx: Context, name: string, user: string, match: string): Promise<PublicKey[]> {
  requireInstance(ctx.paths, name);
  return ctx.withInstanceLock(name, async () => {
    const u = await lookupUser(ctx, name, user);
    const lines = parseAuthorizedKeys(await readAuthorizedKeys(ctx, name, u));
    const wanted = match.trim();
    const hit = (k?: PublicKey) =>
      !!k && (k.fingerprint === wanted || k.comment === wanted || `${k.type} ${k.base64}` === wanted.split(/\s+/).slice(0, 2).join(' '));
    const removed = lines.flatMap((l) => (hit(l.key) ? [l.key!] : []));
    if (removed.length === 0)
      throw new TslxcError(
        `No key "${wanted}" for ${user} in "${name}"`,
        undefined,
        `"tslxc ssh-key list ${name} --user ${user}" shows the keys and their fingerprints`,
      );
    await writeAuthorizedKeys(
      ctx,
      name,
      u,
      lines
        .filter((l) => !hit(l.key))
        .map((l) => `${l.line}\n`)
        .join(''),
    );
    return removed;
  });
}

/** Whether an image runs an SSH server: it has sshd where Debian and most distributions put it. */
export function imageRunsSshd(image: Image): boolean {
  return ['/usr/sbin/sshd', '/usr/bin/sshd', '/usr/sbin/dropbear'].some((p) => {
    try {
      return fs.statSync(resolveInRoot(image.rootfs, p)).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * At create: tslxc's public key into root's authorized_keys, for images that run sshd. The caller
 * holds the container's lock (create does).
 */
export async function authorizeTslxcKey(ctx: Context, name: string, image: Image, written: string[] = []): Promise<boolean> {
  if (!imageRunsSshd(image)) return false;
  const { publicKey } = await ensureKeypair(ctx.paths);
  const own = parseAuthorizedKeys(publicKey)[0]?.key;
  if (!own) throw new TslxcError("tslxc's public key is damaged", `${publicKey.slice(0, 40)}...`, 'remove the ssh dir in the state dir to make a new key');
  await addLocked(ctx, name, 'root', [own], rootKeysInImage(image, written));
  return true;
}

/**
 * Root's passwd entry and authorized_keys as a new container has them, read from its image on the
 * host: two helper runs fewer on every create. Only while the container's root is still
 * the image's there: a whole image (a layered one would need its whiteouts read), and no file the
 * create wrote (`written`: templates, identity files, host keys) is /etc/passwd or under root's home.
 * Otherwise undefined, and the helper reads them in the container's root as usual. Paths are
 * resolved inside the image's root, so an image's symlink cannot point the read at a host file.
 */
export function rootKeysInImage(image: Image, written: string[]): { u: PasswdEntry; current: string } | undefined {
  if (isLayer(image)) return undefined;
  // Regular files only (a FIFO planted by an image would block the read), of a sane size.
  const read = (inner: string) => {
    const file = resolveInRoot(image.rootfs, inner);
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > 1 << 20) throw new Error(`${inner}: not a regular file of at most 1 MiB`);
    return fs.readFileSync(file, 'utf8');
  };
  let u: PasswdEntry | undefined;
  try {
    u = parsePasswd(read('/etc/passwd')).find((e) => e.user === 'root');
  } catch {
    return undefined;
  }
  if (!u || !u.home.startsWith('/') || u.home === '/') return undefined;
  try {
    // Compared as resolved in the image, so a symlink cannot hide that a written file is one of them.
    const passwd = resolveInRoot(image.rootfs, '/etc/passwd');
    const home = resolveInRoot(image.rootfs, u.home);
    const hits = written.map((f) => resolveInRoot(image.rootfs, f)).some((f) => f === passwd || f === home || f.startsWith(`${home}/`));
    if (hits) return undefined;
  } catch {
    return undefined;
  }
  try {
    return { u, current: read(authorizedKeysPath(u)) };
  } catch (err) {
    return isErrno(err, 'ENOENT') ? { u, current: '' } : undefined;
  }
}
