import { VOLATILE_ON_DISK } from './idmap.js';
import { pidAlive } from '../util/proc.js';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { Context } from '../state/context.js';
import { configExists, configWritten, loadConfig, type InstanceConfig } from '../state/config.js';
import { identityFiles, validateHostname } from './create.js';
import { templateFiles } from '../image/templates.js';
import { instanceState } from './status.js';
import { renameInstance } from './manage.js';
import { containerDir, containersDir } from '../state/paths.js';
import { validateInstanceName } from '../util/names.js';
import { crashPoint } from '../util/crash.js';
import { readYaml, writeYamlAtomic } from '../util/yaml.js';
import { target, writeRootFiles } from '../storage/instance.js';
import { driverOf, usePool } from '../storage/driver.js';
import { readRecord, writeRecord, type StorageRecord } from '../storage/record.js';
import { listSnapshots, snapshotDir, withFrozen } from './snapshot.js';
import { BtrfsDriver } from '../storage/drivers/btrfs.js';
import { runOnPool } from '../storage/drivers/common.js';
import type { FullView, Target } from '../storage/drivers/types.js';
import type { PoolConfig } from '../storage/pool.js';
import { getImage } from '../image/store.js';
import { hostKeyFiles, imageNeedsHostKeys } from '../ssh/hostkeys.js';

/**
 * `copy SRC[/SNAP] DST [--storage POOL] [--instance-only]` and `move SRC DST [--storage POOL]`.
 *
 * On one pool (or between pools of the same dir/overlay driver) a copy is copy-on-write where the
 * driver can (btrfs snapshot; overlay copies only the upper layer). Across drivers the source's
 * whole tree (an overlay's merged view, mounted read-only in a private mount namespace that dies
 * with the copy) is copied into a root the target driver makes; an overlay pool then holds it as a
 * flat root with no lower layer. A container's snapshots come along unless --instance-only.
 *
 * A copy gets its own hostname (when the source's was its name), machine-id, MAC addresses (no
 * volatile.* keys: the network code makes new ones at start) and SSH host keys (removed: the
 * Debian image makes new ones at first boot). A move keeps all of them.
 *
 * Everything is assembled in containers/.copy-DST-PID and renamed into place last: a crash leaves
 * no half-made container; the next copy sweeps the dirs of dead copies (and their data on btrfs).
 */
export interface CopyOptions {
  storage?: string;
  instanceOnly?: boolean;
}

const TMP = /^\.(copy|moved)-([a-z0-9-]+)-(\d+)$/;

/**
 * Leftovers of copies and moves whose process died: a temp copy is removed with its data; a
 * container moved aside (`.moved-NAME-PID`) is put back when the move did not finish, removed
 * with its old data when it did.
 */
export async function sweepCopies(ctx: Context): Promise<void> {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(containersDir(ctx.paths));
  } catch {
    return;
  }
  for (const e of entries) {
    const m = TMP.exec(e);
    if (!m || pidAlive(Number(m[3]))) continue;
    const dir = path.join(containersDir(ctx.paths), e);
    const name = m[2];
    if (m[1] === 'moved' && !fs.existsSync(containerDir(ctx.paths, name))) {
      fs.renameSync(dir, containerDir(ctx.paths, name));
      continue;
    }
    // Data on a btrfs pool is keyed by name: remove it only when no container of that name owns it there.
    try {
      const t = target(ctx, name, dir);
      const owner = fs.existsSync(containerDir(ctx.paths, name)) ? readRecord(containerDir(ctx.paths, name)).pool : undefined;
      if (t.pool.driver !== 'btrfs' || owner !== t.pool.name) await driverOf(t.pool.driver).deleteRoot(t);
    } catch {
      /* its pool is gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies a whole tree (an overlay view is mounted read-only in a mount namespace of its own). */
async function fillFrom(view: FullView, dst: string, pool: PoolConfig): Promise<void> {
  if (!view.lower?.length) {
    await runOnPool(pool, 'cp', ['-a', '--reflink=auto', `${view.dir}/.`, dst], `Cannot copy ${view.dir}`);
    return;
  }
  const mnt = `${dst}.view`;
  fs.mkdirSync(mnt, { recursive: true, mode: 0o700 });
  try {
    const script = 'mount -t overlay overlay -o "ro,lowerdir=$1" "$2" && exec cp -a --reflink=auto "$2/." "$3"';
    await runOnPool(
      pool,
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', [view.dir, ...view.lower].join(':'), mnt, dst],
      `Cannot copy ${view.dir}`,
    );
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

/** Removes /etc/ssh/ssh_host_* from a root on the host, following no symlink out of it. */
export function removeSshHostKeys(root: string): void {
  let dir = root;
  for (const part of ['etc', 'ssh']) {
    dir = path.join(dir, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      return;
    }
    if (!st.isDirectory()) return; // a symlink (or nothing usable): nothing of ours to remove
  }
  for (const e of fs.readdirSync(dir)) if (e.startsWith('ssh_host_')) fs.rmSync(path.join(dir, e), { force: true });
}

/** Makes DST's dir (at `tmp`): record, root, snapshots, config. The caller renames it into place. */
async function build(
  ctx: Context,
  src: string,
  snap: string | undefined,
  dst: string,
  tmp: string,
  opts: CopyOptions & { move?: boolean },
): Promise<InstanceConfig> {
  const srcCfg = loadConfig(ctx.paths, src);
  let snapDir: string | undefined;
  let cfg: InstanceConfig = srcCfg;
  let running = false;
  if (snap) {
    snapDir = snapshotDir(ctx, src, snap);
    if (!fs.existsSync(path.join(snapDir, 'snapshot.yaml'))) throw new TslxcError(`Snapshot "${src}/${snap}" not found`);
    cfg = readYaml<InstanceConfig>(path.join(snapDir, 'config.yaml'));
  } else {
    const state = await instanceState(ctx, srcCfg);
    // A running container is copied frozen (as a snapshot is); a paused one as it stands; a move needs it stopped.
    const ok = opts.move ? ['Stopped', 'Created'] : ['Stopped', 'Created', 'Running', 'Frozen'];
    if (!ok.includes(state.status)) {
      throw new TslxcError(
        `Cannot ${opts.move ? 'move' : 'copy'} "${src}"`,
        `it is ${state.status.toLowerCase()}`,
        opts.move ? 'stop it first' : `"tslxc stop --force ${src}" first`,
      );
    }
    running = state.status === 'Running';
  }
  const from = target(ctx, src);
  const fd = driverOf(from.pool.driver);
  await fd.activate(ctx.paths, from.pool);
  const pool = opts.storage ? await usePool(ctx, opts.storage) : from.pool;
  const samePool = pool.name === from.pool.name;
  // dir and overlay keep roots in the container's dir whatever the pool: their own copies work between pools.
  const sameDriver = pool.driver === from.pool.driver && (samePool || pool.driver !== 'btrfs');
  const record: StorageRecord = sameDriver
    ? { ...from.record, ...(pool.name ? { pool: pool.name } : {}) }
    : { pool: pool.name, driver: pool.driver, ...(from.record.image ? { image: from.record.image } : {}) };
  if (!sameDriver && pool.driver === 'overlay') record.flat = true;
  if (!sameDriver && pool.driver !== 'overlay') delete record.flat;
  writeRecord(tmp, record);
  const to: Target = { paths: ctx.paths, pool, instDir: tmp, name: dst, record };
  const td = driverOf(pool.driver);
  const copyRoot = async () => {
    if (sameDriver) {
      if (snapDir) await td.copyFromSnapshot(from, snapDir, snap!, to);
      else await td.copyRoot(from, to);
    } else {
      await td.importRoot(to, (dir) => fillFrom(fd.fullView(from, snapDir, snap), dir, pool));
    }
  };
  if (running) await withFrozen(ctx, src, copyRoot);
  else await copyRoot();

  if (!snap && !opts.instanceOnly) {
    for (const s of listSnapshots(ctx, src)) {
      const sd = snapshotDir(ctx, src, s.name);
      const dsd = path.join(tmp, 'snapshots', s.name);
      fs.mkdirSync(dsd, { recursive: true, mode: 0o700 });
      fs.copyFileSync(path.join(sd, 'snapshot.yaml'), path.join(dsd, 'snapshot.yaml'));
      // The snapshot's config is the copy's too: its name, and (for a copy) no MAC addresses of the source's.
      const sc = readYaml<InstanceConfig>(path.join(sd, 'config.yaml'));
      const scOut: InstanceConfig = { ...sc, name: dst, hostname: sc.hostname === src ? dst : sc.hostname };
      if (!opts.move) scOut.config = Object.fromEntries(Object.entries(sc.config ?? {}).filter(([k]) => !k.startsWith('volatile.') || k === VOLATILE_ON_DISK));
      writeYamlAtomic(path.join(dsd, 'config.yaml'), scOut, 0o600);
      if (sameDriver && pool.driver === 'btrfs') await (td as BtrfsDriver).copySnapshot(from, s.name, to);
      else if (sameDriver)
        await runOnPool(pool, 'cp', ['-a', '--reflink=auto', path.join(sd, 'rootfs'), path.join(dsd, 'rootfs')], `Cannot copy snapshot ${src}/${s.name}`);
      else await td.importSnapshot(to, dsd, s.name, (dir) => fillFrom(fd.fullView(from, sd, s.name), dir, pool));
    }
  }

  let out: InstanceConfig;
  if (opts.move) {
    out = { ...cfg, name: dst };
    if (cfg.hostname === src && dst !== src) {
      out.hostname = dst;
      writeRootFiles(ctx, dst, identityFiles(dst), tmp);
    }
  } else {
    const hostname = cfg.hostname === src ? dst : cfg.hostname;
    validateHostname(hostname);
    removeSshHostKeys(driverOf(pool.driver).access(to).root);
    // New host keys at once where the image had none of its own (else its first boot makes them).
    const image = cfg.image?.fingerprint ? getImage(ctx.paths, cfg.image.fingerprint) : undefined;
    const hostKeys = image && imageNeedsHostKeys(ctx.paths, image) ? hostKeyFiles(hostname) : [];
    writeRootFiles(
      ctx,
      dst,
      [...templateFiles(ctx.paths, cfg.image?.fingerprint, 'copy', { name: dst, hostname }), ...identityFiles(hostname, { newMachineId: true }), ...hostKeys],
      tmp,
    );
    // volatile.last_state.idmap describes the copied files (shifted on disk), so it stays.
    const config = Object.fromEntries(Object.entries(cfg.config ?? {}).filter(([k]) => !k.startsWith('volatile.') || k === VOLATILE_ON_DISK));
    out = { ...cfg, name: dst, hostname, status: 'created', created_at: new Date().toISOString(), config };
    delete out.last_used_at;
  }
  writeYamlAtomic(path.join(tmp, 'config.yaml'), out, 0o600);
  return out;
}

function lockBoth<T>(ctx: Context, a0: string, b0: string, fn: () => Promise<T>): Promise<T> {
  if (a0 === b0) return ctx.withInstanceLock(a0, fn);
  const [a, b] = [a0, b0].sort();
  return ctx.withInstanceLock(a, () => ctx.withInstanceLock(b, fn));
}

export async function copyInstance(ctx: Context, source: string, dst: string, opts: CopyOptions = {}): Promise<InstanceConfig> {
  const [src, snap] = source.split('/', 2) as [string, string | undefined];
  validateInstanceName(src);
  validateInstanceName(dst);
  if (src === dst) throw new TslxcError(`Cannot copy "${src}"`, 'source and destination are the same');
  await sweepCopies(ctx);
  return lockBoth(ctx, src, dst, async () => {
    loadConfig(ctx.paths, src); // a missing source is "not found" before anything is made (containers/ may not exist yet)
    if (configExists(ctx.paths, dst) || fs.existsSync(containerDir(ctx.paths, dst)))
      throw new TslxcError(`Cannot copy to "${dst}"`, 'a container of that name exists');
    const tmp = path.join(containersDir(ctx.paths), `.copy-${dst}-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o700 });
    crashPoint('copy:started');
    try {
      const out = await build(ctx, src, snap, dst, tmp, opts);
      fs.renameSync(tmp, containerDir(ctx.paths, dst));
      configWritten(ctx.paths, dst, undefined, out);
      return out;
    } catch (err) {
      await discard(ctx, dst, tmp);
      throw err;
    }
  });
}

async function discard(ctx: Context, name: string, tmp: string): Promise<void> {
  try {
    const t = target(ctx, name, tmp);
    const owner = fs.existsSync(containerDir(ctx.paths, name)) ? readRecord(containerDir(ctx.paths, name)).pool : undefined;
    if (t.pool.driver !== 'btrfs' || owner !== t.pool.name) await driverOf(t.pool.driver).deleteRoot(t);
  } catch {
    /* nothing made yet */
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

/**
 * `move SRC DST [--storage POOL]`: a rename on one pool; to another pool, a copy that keeps the
 * container's identity (MACs, machine-id, SSH keys), then the old one goes. With the same name the
 * old dir is moved aside (.moved-NAME-PID) and the new one renamed in: sweepCopies puts the old one
 * back if a crash came between the two renames.
 */
export async function moveInstance(ctx: Context, src: string, dst: string, opts: { storage?: string; instanceOnly?: boolean } = {}): Promise<void> {
  validateInstanceName(src);
  validateInstanceName(dst);
  loadConfig(ctx.paths, src); // "not found" first, before any other complaint or anything made
  const cur = target(ctx, src);
  if (!opts.storage || opts.storage === cur.pool.name) {
    if (src === dst)
      throw new TslxcError(`Cannot move "${src}"`, opts.storage ? `it is already on pool "${opts.storage}"` : 'give a new name or --storage POOL');
    await renameInstance(ctx, src, dst);
    return;
  }
  await sweepCopies(ctx);
  await lockBoth(ctx, src, dst, async () => {
    if (src !== dst && (configExists(ctx.paths, dst) || fs.existsSync(containerDir(ctx.paths, dst))))
      throw new TslxcError(`Cannot move to "${dst}"`, 'a container of that name exists');
    const tmp = path.join(containersDir(ctx.paths), `.copy-${dst}-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o700 });
    let out: InstanceConfig;
    try {
      out = await build(ctx, src, undefined, dst, tmp, { ...opts, move: true });
    } catch (err) {
      await discard(ctx, dst, tmp);
      throw err;
    }
    const aside = path.join(containersDir(ctx.paths), `.moved-${src}-${process.pid}`);
    fs.renameSync(containerDir(ctx.paths, src), aside);
    fs.renameSync(tmp, containerDir(ctx.paths, dst));
    configWritten(ctx.paths, dst, undefined, out);
    if (src !== dst) configWritten(ctx.paths, src, {}, {});
    // The old root's data: on btrfs it is keyed by name in the old pool, elsewhere it is in `aside`.
    const old = target(ctx, src, aside);
    await driverOf(old.pool.driver)
      .deleteRoot(old)
      .catch(() => {});
    fs.rmSync(aside, { recursive: true, force: true });
    const runDir = path.join(ctx.paths.runDir, 'containers');
    if (src !== dst && fs.existsSync(path.join(runDir, src))) fs.rmSync(path.join(runDir, src), { recursive: true, force: true });
  });
}
