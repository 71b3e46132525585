import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportKeepersDir, imagesDir, type Paths } from '../state/paths.js';
import { claimPidFile, pidFileHolder, processGroupAlive, processGroupMembers } from '../util/proc.js';

/**
 * A built image's kept export (lxd.ts keepExport: LXD's unified tarball, whose sha256 the API
 * shows as the image's fingerprint) made ahead of time, so that the first `lxc image show`,
 * `export` or `launch` through the API does not wait for it: in the background, at nice 19, after
 * the image is stored (store.ts addImage) and for the images without one when `tslxc serve`
 * starts. It waits TSLXC_KEEP_EXPORT_DELAY_MS first (10 s), so that it does not compete with the
 * boot of a container just made from the image; -1 turns it off (the test installations' default:
 * their image stores are checked file by file).
 *
 * Layout, in TSLXC_RUN_DIR/export-keepers/ (root only; PIDs mean nothing after a reboot):
 *   FINGERPRINT        the PID of the process making that image's export; gone when done
 *   FINGERPRINT.hurry  someone waits for it: the delay is skipped, and the niceness dropped
 * One process (kept-export-worker.ts) makes the exports it is given in turn. Whoever needs an
 * export now waits for that process rather than making a second one; deleting an image stops it.
 */

// By a path from this module's dir that also holds from the CLI's bundles (dist/lib/full, ...),
// which sit at the same depth: the worker runs as tsc compiled it.
const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../image/kept-export-worker.js');
const FP = /^[0-9a-f]{64}$/;

export const keeperFile = (p: Paths, fp: string) => path.join(exportKeepersDir(p), fp);
export const hurryFile = (p: Paths, fp: string) => `${keeperFile(p, fp)}.hurry`;

/** The delay, or undefined when made only when asked for (-1). */
function delayMs(): string | undefined {
  const ms = Number(process.env.TSLXC_KEEP_EXPORT_DELAY_MS ?? 10_000);
  if (ms === -1) return undefined;
  return String(Number.isFinite(ms) && ms >= 0 ? ms : 10_000);
}

/** The process making fp's export, if it still runs the worker for it (a recycled PID is not ours). */
export function keeper(p: Paths, fp: string): number | undefined {
  return pidFileHolder(keeperFile(p, fp), [WORKER, fp]);
}

/**
 * Starts one background process making the exports of these images, but of those another process
 * makes already. Never throws and never waits: an export made now is only a wait saved later.
 */
export function keepExportLater(p: Paths, fingerprints: string[]): void {
  const delay = delayMs();
  if (delay === undefined) return;
  const claimed: Array<{ fp: string; fd: number }> = [];
  try {
    fs.mkdirSync(exportKeepersDir(p), { recursive: true, mode: 0o700 });
    for (const fp of fingerprints) {
      if (!FP.test(fp)) continue;
      const fd = claimPidFile(keeperFile(p, fp), () => keeper(p, fp) !== undefined);
      if (fd !== undefined) claimed.push({ fp, fd }); // else being made
    }
    if (!claimed.length) return;
    const child = spawn('nice', ['-n', '19', process.execPath, WORKER, JSON.stringify(p), delay, ...claimed.map((c) => c.fp)], {
      detached: true,
      stdio: 'ignore',
    });
    child.on('error', () => claimed.forEach((c) => fs.rmSync(keeperFile(p, c.fp), { force: true })));
    child.unref();
    for (const c of claimed) fs.writeSync(c.fd, `${child.pid ?? 0}\n`);
  } catch {
    for (const c of claimed) fs.rmSync(keeperFile(p, c.fp), { force: true });
  } finally {
    for (const c of claimed) fs.closeSync(c.fd);
  }
}

/**
 * If a background process is making fp's export: asks it to hurry (no delay left) and waits until
 * it is done with it. What it runs already (its tar and compressor) runs unniced from now on.
 */
export async function awaitKeeper(p: Paths, fp: string): Promise<void> {
  const pid = keeper(p, fp);
  if (pid === undefined) return;
  try {
    fs.writeFileSync(hurryFile(p, fp), '');
  } catch {
    /* the store is gone: so is the keeper's work */
  }
  for (const member of processGroupMembers(pid))
    try {
      os.setPriority(member, 0);
    } catch {
      /* ended meanwhile, or not ours to renice */
    }
  while (keeper(p, fp) !== undefined) await new Promise((r) => setTimeout(r, 50));
  fs.rmSync(hurryFile(p, fp), { force: true });
}

/**
 * Stops the making of fp's export (its image is being deleted), or of every one: the process is
 * killed (its group: the tar and compressor it runs too) and its temp dir removed. The other
 * images it had still to do are given to a new one.
 */
export async function stopKeeping(p: Paths, fp?: string): Promise<void> {
  let fps: string[];
  try {
    fps = fs.readdirSync(exportKeepersDir(p)).filter((n) => FP.test(n));
  } catch {
    return;
  }
  const pids = new Map<number, string[]>();
  for (const f of fps) {
    const pid = keeper(p, f);
    if (pid !== undefined) pids.set(pid, [...(pids.get(pid) ?? []), f]);
  }
  const killed: number[] = [];
  const others: string[] = [];
  for (const [pid, its] of pids) {
    if (fp && !its.includes(fp)) continue;
    try {
      process.kill(-pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      /* ended meanwhile */
    }
    others.push(...its.filter((f) => f !== fp));
  }
  for (let i = 0; i < 200 && killed.some(processGroupAlive); i++) await new Promise((r) => setTimeout(r, 10));
  // keepExport's temp dir in the store (.tmp-keepRANDOM-PID), which the store's sweep would take later.
  const temps = killed.length ? fs.readdirSync(imagesDir(p)).filter((n) => n.startsWith('.tmp-keep')) : [];
  for (const pid of killed) for (const n of temps) if (n.endsWith(`-${pid}`)) fs.rmSync(path.join(imagesDir(p), n), { recursive: true, force: true });
  for (const f of fp ? [fp, ...others] : fps) {
    fs.rmSync(keeperFile(p, f), { force: true });
    fs.rmSync(hurryFile(p, f), { force: true });
  }
  if (fp && others.length) keepExportLater(p, others);
}
