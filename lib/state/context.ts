import fs from 'node:fs';
import { containerDir, containersDir, defaultPaths, freezeMarkerFile, locksDir, type Paths } from './paths.js';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { lockFile, sweepLocks, withLock } from '../util/lock.js';
import { pidAlive } from '../util/proc.js';
import { recoverInstance, renameMarker } from './config.js';
import { journalFile } from './journal.js';

/** The file of a container's lock (util/lock.ts). */
export const instanceLockFile = (p: Paths, name: string) => lockFile(locksDir(p), `ct-${name}`);

/**
 * Removes the lock files of containers that do not exist: a copy or launch killed before its
 * container appeared left one (a file no process holds is no lock, but nothing else would remove it).
 */
export function sweepInstanceLocks(p: Paths): string[] {
  return sweepLocks(locksDir(p), (key) => key.startsWith('ct-') && !fs.existsSync(path.join(containersDir(p), key.slice('ct-'.length))));
}

/**
 * A snapshot or copy that froze the running container was killed before its thaw: its marker
 * names a process that is gone. (One that is alive holds the container's lock, or is not ours.)
 */
export function abandonedFreeze(p: Paths, name: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(freezeMarkerFile(p, name), 'utf8'));
  } catch {
    return false;
  }
  return !(pid && pidAlive(pid));
}

/** What taking a container's lock repaired before the operation ran. */
export interface Recovery {
  /** it was left frozen by a killed snapshot or copy, and is running again */
  thawed: boolean;
}

export interface ContextOptions {
  /**
   * Thaws container `name` if it is frozen and says whether it was: the repair of a freeze a killed
   * snapshot or copy abandoned (cgroup/context.ts's thawIfFrozen). Injected because the cgroup
   * driver is a layer above this one; a Context without it refuses to run an operation on such a
   * container rather than run it frozen.
   */
  thawIfFrozen?: (ctx: Context, name: string) => Promise<boolean>;
}

/**
 * What every instance operation needs: where state lives, the locks, and the repair of what a
 * killed operation left half done. (The host's cgroup driver of a Context: cgroup/context.ts.)
 */
export class Context {
  constructor(
    readonly paths: Paths = defaultPaths(),
    private readonly options: ContextOptions = {},
  ) {}

  /**
   * Serialise changes of device grants (a start with unix devices, a live change of them): on
   * cgroup v1 they change the prefix cgroup all containers share.
   */
  withDevicesLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(locksDir(this.paths), 'cgroup-devices', fn, { purpose: 'the device cgroup prefix', timeoutMs: 60_000 });
  }

  /**
   * Serialise operations on one container across processes. What a killed operation left half
   * done is finished first, here and not in the reads (list, info), which show it as it is.
   */
  withInstanceLock<T>(name: string, fn: (recovered: Recovery) => Promise<T>): Promise<T> {
    return withLock(locksDir(this.paths), `ct-${name}`, async () => fn(await this.recover(name)), { purpose: `container "${name}"`, timeoutMs: 5 * 60_000 });
  }

  /**
   * For a command that reads a stopped container's files without its lock (file pull and push):
   * a journal a killed restore or rename left is finished first, under the lock, as any locked
   * command would (its root is found through the dir's storage record, which a rename still has to
   * move). Without one (two stats) the lock is not taken.
   */
  async finishPending(name: string): Promise<void> {
    if (fs.existsSync(journalFile(containerDir(this.paths, name))) || fs.existsSync(renameMarker(this.paths, name)))
      await this.withInstanceLock(name, async () => {});
  }

  private async recover(name: string): Promise<Recovery> {
    // A restore or rename committed and killed before its last rename (storage/journal.ts).
    recoverInstance(this.paths, name);
    if (!abandonedFreeze(this.paths, name)) return { thawed: false };
    // Frozen or not (the kill may have come right after its thaw, or the container stopped since),
    // the marker goes; a thaw that fails keeps it for the next try.
    const thaw = this.options.thawIfFrozen;
    if (!thaw)
      throw new TslxcError(
        `Container "${name}" may still be frozen by a killed snapshot or copy`,
        'this process was not given the step that thaws it',
        `"tslxc resume ${name}" thaws it`,
      );
    const thawed = await thaw(this, name);
    fs.rmSync(freezeMarkerFile(this.paths, name), { force: true });
    return { thawed };
  }
}
