import path from 'node:path';
import { TslxcError } from '../errors.js';
import type { CgroupSys } from './sys.js';

/**
 * Helpers both drivers share: safe path parts, writes that turn the kernel's refusal into a clear
 * error, walking a subtree, and removing one depth first.
 */

const PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

/** A prefix is one or more "/"-separated parts; no part may climb out (".", ".."). */
export function validatePrefix(prefix: string): string {
  const parts = typeof prefix === 'string' ? prefix.split('/') : [];
  if (parts.length === 0 || parts.some((p) => !PART.test(p) || p === '.' || p === '..')) {
    throw new TslxcError(`Invalid cgroup prefix "${String(prefix)}"`, 'use letters, digits, ".", "_" and "-", with "/" between levels');
  }
  return prefix;
}

/** Container names arrive validated (DNS labels); this re-check only guards the path built from them. */
export function validateCgroupName(name: string): string {
  if (typeof name !== 'string' || !PART.test(name) || name === '.' || name === '..') {
    throw new TslxcError(`Invalid cgroup name "${String(name)}"`, 'use letters, digits, ".", "_" and "-"');
  }
  return name;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function isErrnoCode(err: unknown, ...codes: string[]): boolean {
  const c = errnoOf(err);
  return c !== undefined && codes.includes(c);
}

const WHY: Record<string, string> = {
  EINVAL: 'the kernel refused the value (out of range, or in conflict with the parent or with another limit)',
  EBUSY: 'the cgroup is busy (it has tasks or child cgroups that forbid the change)',
  ENOENT: 'the file does not exist (the controller is not enabled for this cgroup)',
  EACCES: 'permission denied (tslxc must run as root)',
  EPERM: 'operation not permitted (tslxc must run as root)',
  ENOSPC: 'no space (the cgroup has no CPUs or memory nodes to use)',
  EOPNOTSUPP: 'the kernel does not support this',
  ERANGE: 'the value is out of range',
};

export function cgroupWriteError(what: string, file: string, value: string, err: unknown): TslxcError {
  const code = errnoOf(err);
  const why = code ? `${code}: ${WHY[code] ?? (err as Error).message}` : ((err as Error)?.message ?? String(err));
  return new TslxcError(`Cannot set ${what}: writing "${value.trim()}" to ${file} failed`, why, undefined, { cause: err });
}

/** Write one value to a control file; a refusal becomes a TslxcError saying what and why. */
export async function writeControl(sys: CgroupSys, dir: string, file: string, value: string, what = file): Promise<void> {
  const p = path.join(dir, file);
  try {
    await sys.fs.writeFile(p, value);
  } catch (err) {
    throw cgroupWriteError(what, p, value, err);
  }
}

/** Read a control file, trimmed; undefined when it does not exist (controller absent). */
export async function readControl(sys: CgroupSys, dir: string, file: string): Promise<string | undefined> {
  try {
    return (await sys.fs.readFile(path.join(dir, file))).trim();
  } catch (err) {
    if (isErrnoCode(err, 'ENOENT', 'ENOTDIR', 'EOPNOTSUPP', 'ENODEV')) return undefined;
    throw err;
  }
}

export async function readNumber(sys: CgroupSys, dir: string, file: string): Promise<number | undefined> {
  const v = await readControl(sys, dir, file);
  if (v === undefined || v === '' || v === 'max') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** `key value` lines (cpu.stat, cgroup.events, memory.stat) as a map. */
export function parseKeyed(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) map.set(k, v);
  }
  return map;
}

/** All cgroup dirs of a subtree, parents before children; [] when `dir` does not exist. */
export async function walk(sys: CgroupSys, dir: string): Promise<string[]> {
  let children: string[];
  try {
    children = await sys.fs.subdirs(dir);
  } catch (err) {
    if (isErrnoCode(err, 'ENOENT', 'ENOTDIR')) return [];
    throw err;
  }
  const out = [dir];
  for (const c of children.sort()) out.push(...(await walk(sys, path.join(dir, c))));
  return out;
}

/** PIDs listed in cgroup.procs anywhere under the given dirs, distinct and sorted. */
export async function subtreePids(sys: CgroupSys, dirs: readonly string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const top of dirs) {
    for (const d of await walk(sys, top)) {
      const text = await readControl(sys, d, 'cgroup.procs');
      for (const l of (text ?? '').split('\n')) {
        const n = Number(l.trim());
        if (l.trim() !== '' && Number.isInteger(n) && n > 0) pids.add(n);
      }
    }
  }
  return [...pids].sort((a, b) => a - b);
}

export interface Deadline {
  timeoutMs: number;
  intervalMs: number;
}

/** Poll `done` until it holds or the time is up; returns whether it held. */
export async function waitUntil(sys: CgroupSys, done: () => Promise<boolean>, d: Deadline): Promise<boolean> {
  const end = sys.now() + d.timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (sys.now() >= end) return false;
    await sys.sleep(d.intervalMs);
  }
}

/**
 * Remove a cgroup subtree depth first. rmdir of a cgroup fails with EBUSY while exiting tasks
 * drain (or while a container's systemd still makes or tears down its own sub-cgroups), so the
 * whole subtree is walked again and retried until the deadline. A dir already gone is fine.
 */
export async function removeTree(sys: CgroupSys, top: string, d: Deadline): Promise<void> {
  let lastErr: unknown;
  let busyDir = top;
  const ok = await waitUntil(
    sys,
    async () => {
      for (const dir of (await walk(sys, top)).reverse()) {
        try {
          await sys.fs.rmdir(dir);
        } catch (err) {
          if (isErrnoCode(err, 'ENOENT')) continue;
          if (!isErrnoCode(err, 'EBUSY', 'ENOTEMPTY')) throw cgroupRemoveError(dir, err);
          lastErr = err;
          busyDir = dir;
        }
      }
      return !(await sys.fs.exists(top));
    },
    d,
  );
  if (!ok) {
    throw new TslxcError(
      `Cannot remove cgroup ${busyDir}`,
      `${errnoOf(lastErr) ?? 'EBUSY'}: it still has tasks or child cgroups after ${d.timeoutMs} ms`,
      'look for processes in its cgroup.procs that do not die',
      { cause: lastErr },
    );
  }
}

function cgroupRemoveError(dir: string, err: unknown): TslxcError {
  const code = errnoOf(err);
  return new TslxcError(`Cannot remove cgroup ${dir}`, code ? `${code}: ${WHY[code] ?? (err as Error).message}` : String(err), undefined, {
    cause: err,
  });
}
