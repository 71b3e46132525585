import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { containerConfigFile, containerRunDir, RUN_FILES, type Paths } from './paths.js';
import { readTextIfExists } from '../util/fs.js';
import { isAlive, parseRef, type ProcessRef } from '../util/proc.js';

/**
 * What the native monitor leaves in a container's run dir (native/README.md):
 *   monitor.pid, init.pid  "PID STARTTIME"
 *   console.sock           the console's unix socket
 *   console.log(.1)        what init wrote to the console, bounded
 *   exit                   why it last ended (stop, reboot, crash ...)
 */
export interface RuntimeFiles {
  dir: string;
  monitor?: ProcessRef;
  init?: ProcessRef;
  exit?: string;
}

export function runtimeFiles(p: Paths, name: string): RuntimeFiles {
  const dir = containerRunDir(p, name);
  return {
    dir,
    monitor: parseRef(readTextIfExists(path.join(dir, RUN_FILES.monitorPid))),
    init: parseRef(readTextIfExists(path.join(dir, RUN_FILES.initPid))),
    exit: readTextIfExists(path.join(dir, RUN_FILES.exit))?.trim(),
  };
}

export interface Liveness {
  files: RuntimeFiles;
  monitorAlive: boolean;
  initAlive: boolean;
  /** pid files left by a monitor that did not end cleanly */
  leftovers: boolean;
}

/**
 * Whether the monitor and init run: each pid file's PID with its start time (util/proc.ts). The
 * helper's exec fast path decides "init alive" from the same file by the same rule
 * (native/layout.c instance_init_alive); test/unit/state/one-source.test.ts holds them together.
 */
export function liveness(p: Paths, name: string): Liveness {
  const files = runtimeFiles(p, name);
  const monitorAlive = isAlive(files.monitor);
  const initAlive = isAlive(files.init);
  return { files, monitorAlive, initAlive, leftovers: !monitorAlive && !initAlive && (!!files.monitor || !!files.init) };
}

/** The pid files and sockets a dead monitor left, and the record of its devices (the console log is kept for post-mortems). */
export const CLEARED_RUN_FILES = [
  RUN_FILES.monitorPid,
  RUN_FILES.initPid,
  RUN_FILES.consoleSocket,
  RUN_FILES.consoleControl,
  'devices.json',
  'disks',
  'nodes',
  'nodes.json',
];

export function clearRuntime(files: RuntimeFiles): void {
  for (const f of CLEARED_RUN_FILES) fs.rmSync(path.join(files.dir, f), { force: true });
}

/** Fail with the usual line when there is no such container (without parsing its config). */
export function requireInstance(p: Paths, name: string): void {
  if (!fs.existsSync(containerConfigFile(p, name))) throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"');
}

/** Lines a console shows around a failure that say nothing about its cause. */
const CONSOLE_NOISE =
  /^(exiting pid 1|freezing execution|halting system|powering off|rebooting|sending sig\w+ to remaining processes|all filesystems, swaps, loop devices)/i;

/**
 * The last few lines init wrote to its console (from byte FROM of console.log) that may say why it
 * ended, escape sequences, systemd's status markers and shutdown chatter left out, joined on one
 * line; '' when none.
 */
export function consoleTail(dir: string, from = 0, lines = 3): string {
  let text = '';
  try {
    const fd = fs.openSync(path.join(dir, RUN_FILES.consoleLog), 'r');
    try {
      const size = fs.fstatSync(fd).size;
      // From FROM on (what one boot wrote), when the log was not rotated since.
      const start = Math.max(size - 8192, from <= size ? from : 0);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
  const meaningful = text
    .split(/\r?\n|\r/)
    .map((l) =>
      l
        // eslint-disable-next-line no-control-regex
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        // eslint-disable-next-line no-control-regex
        .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
        .replace(/^\s*\[[ !*A-Z]+\]\s*/, '')
        .trim(),
    )
    .filter((l) => l && !CONSOLE_NOISE.test(l));
  return meaningful
    .slice(-lines)
    .map((l) => (l.length > 200 ? `${l.slice(0, 197)}...` : l))
    .join(' / ');
}
