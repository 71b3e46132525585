import fs from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { isAlive, parseRef, pidAlive, selfRef } from '../util/proc.js';
import { crashPoint } from '../util/crash.js';
import { tryLock } from '../util/lock.js';

/**
 * A commit that takes several renames (a restore swaps the root and replaces the config; a btrfs
 * snapshot rename moves its subvolume and its dir) made crash-safe by a journal: everything new is
 * built beside first, then INSTANCE_DIR/.journal.json lists the renames, written atomically (the
 * commit point), then they run in order and the journal goes. A tslxc killed before the journal
 * leaves the old state (plus temp files its sweeps remove); killed after, the next command that
 * takes the container's lock finishes the renames (Context.withInstanceLock). Reads do not write:
 * they see the committed state through the journal (readJournal, finalPath), as the commit point
 * says it is, so a read and the next locked command agree.
 *
 * Which renames are done needs no progress record: every source exists until its own rename, so
 * the highest step whose source is gone marks the done prefix (a source may come back through a
 * later step, as the root does: root -> old, new -> root; hence the highest, not the first).
 * A rename of the container moves INSTANCE_DIR itself, last, and the journal with it: a journal
 * found in the destination of a step says that step is done.
 *
 * Crash here means the process (SIGKILL, OOM, a bug): the new tree is in the page cache and the
 * kernel's view is whole. Against power loss the commit is as good as the filesystem's rename
 * ordering; nothing here fsyncs 10,000 files.
 */
export interface Journal {
  /** "PID STARTTIME" of the writer: a live writer's journal is left alone */
  owner: string;
  what: string;
  renames: Array<[string, string]>;
  /** removed once the renames are done: what the commit replaced */
  leftovers: string[];
}

export const journalFile = (instDir: string) => path.join(instDir, '.journal.json');

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function renameSteps(j: Journal, from: number): void {
  for (let i = from; i < j.renames.length; i++) {
    const [src, dst] = j.renames[i];
    try {
      fs.renameSync(src, dst);
    } catch (err) {
      // A racing replayer did it (sources exist until their own step): go on.
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    crashPoint(`${j.what}:rename-${i + 1}`);
  }
}

/** Where the journal is once its renames are done: INSTANCE_DIR, or where a step moved it. */
function finalDir(j: Journal, instDir: string): string {
  let dir = instDir;
  for (const [src, dst] of j.renames) if (src === dir) dir = dst;
  return dir;
}

/** Writes the journal (the commit), runs the renames, removes the journal. The caller removes the leftovers. */
export function commitRenames(instDir: string, what: string, renames: Array<[string, string]>, leftovers: string[] = []): void {
  const me = selfRef();
  const j: Journal = { owner: `${me.pid} ${me.startTime}`, what, renames, leftovers };
  crashPoint(`${what}:before-commit`);
  writeFileAtomic(journalFile(instDir), `${JSON.stringify(j, null, 1)}\n`, 0o600);
  crashPoint(`${what}:committed`);
  renameSteps(j, 0);
  fs.rmSync(journalFile(finalDir(j, instDir)), { force: true });
}

/** The names DIR will hold once the journal is finished, from the names it holds now (ENTRIES). */
export function finalEntries(v: JournalView | undefined, dir: string, entries: string[]): string[] {
  if (!v) return entries;
  const names = new Set(entries);
  for (const [src, dst] of v.journal.renames.slice(v.done)) {
    if (path.dirname(src) === dir) names.delete(path.basename(src));
    if (path.dirname(dst) === dir) names.add(path.basename(dst));
  }
  return [...names];
}

export type JournalState = 'none' | 'finished' | 'pending';

/** A journal as found, and how many of its renames are done (the same rule a replay uses). */
export interface JournalView {
  journal: Journal;
  done: number;
}

/** The journal in INSTANCE_DIR, read without writing anything: one failed open when there is none. */
export function readJournal(instDir: string): JournalView | undefined {
  let j: Journal;
  try {
    j = JSON.parse(fs.readFileSync(journalFile(instDir), 'utf8')) as Journal;
  } catch (err) {
    // Absent, or caught mid-write by a reader (written atomically: absent, then whole).
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || err instanceof SyntaxError) return undefined;
    throw err;
  }
  return { journal: j, done: doneSteps(j, instDir) };
}

/** The done prefix: up to the step that moved the journal here, then the highest step whose source is gone. */
function doneSteps(j: Journal, instDir: string): number {
  const moved = j.renames.findIndex(([, dst]) => dst === instDir) + 1;
  let done = moved;
  j.renames.forEach(([src], i) => {
    if (i >= moved && !exists(src)) done = i + 1;
  });
  return done;
}

/**
 * Where the content that FILE will hold once the journal is finished is now, or undefined when it
 * will not exist (it is moved away by a rename still to come). Pending renames are undone from the
 * last: a path at or under a destination came from the source.
 */
export function finalPath(v: JournalView, file: string): string | undefined {
  let p = file;
  const under = (x: string, dir: string) => x === dir || x.startsWith(`${dir}/`);
  for (let i = v.journal.renames.length - 1; i >= v.done; i--) {
    const [src, dst] = v.journal.renames[i];
    if (under(p, dst)) p = src + p.slice(dst.length);
    else if (under(p, src)) return undefined;
  }
  return p;
}

/**
 * Finishes the journal a dead tslxc left in INSTANCE_DIR. 'pending' when there is one that cannot
 * be finished now: its writer still runs, another process is finishing it, or a dir it names is
 * missing (a btrfs loop pool not mounted yet after a reboot: the driver mounts it, then asks again).
 * Callers must then leave the root alone.
 */
export function finishJournal(instDir: string): JournalState {
  let j: Journal;
  try {
    j = JSON.parse(fs.readFileSync(journalFile(instDir), 'utf8')) as Journal;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 'none';
    throw err;
  }
  if (isAlive(parseRef(j.owner))) return 'pending';
  // The journal travelled here with its dir: that step and those before it are done.
  const moved = j.renames.findIndex(([, dst]) => dst === instDir) + 1;
  if (!j.renames.slice(moved).every(([a, b]) => exists(path.dirname(a)) && exists(path.dirname(b)))) return 'pending';
  // The replayers' own lock (INSTANCE_DIR/.journal.lock), not waited for: a holder is finishing it.
  const lock = tryLock(instDir, '.journal');
  if (!lock) return 'pending';
  let end = instDir;
  try {
    if (!exists(journalFile(instDir))) return 'finished'; // another replayer was quicker
    renameSteps(j, doneSteps(j, instDir));
    // The replay lock moved with the dir too, when a step moved it.
    end = moved ? instDir : finalDir(j, instDir);
    for (const l of j.leftovers) fs.rmSync(l, { recursive: true, force: true });
    fs.rmSync(journalFile(end), { force: true });
    return 'finished';
  } finally {
    lock.release();
    // A step that moved the dir moved the lock's file with it: there it is no lock, only a file.
    if (end !== instDir) fs.rmSync(path.join(end, '.journal.lock'), { force: true });
  }
}

/**
 * What restores leave in a container's dir, removed once their process is gone: trees and configs
 * built and never committed (`-new-PID`, `.config-restore-PID.yaml`), and what a committed restore
 * replaced and had not removed yet (`-old-PID`). Only when no journal is pending: its sources are
 * among these names.
 */
const RESTORE_TEMP = /^\.(?:rootfs-new|rootfs-old|overlay-work-new|overlay-work-old|config-restore|config-rename)-(\d+)(?:\.yaml)?$/;

export function sweepRestoreTemps(instDir: string, entries = readdirOrNone(instDir)): void {
  for (const e of entries) {
    const m = RESTORE_TEMP.exec(e);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(instDir, e), { recursive: true, force: true });
  }
}

function readdirOrNone(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
