import fsp from 'node:fs/promises';

/**
 * The driver reaches the kernel only through these few calls, so tests can run it against a fake
 * cgroup tree (a temp dir plus a small emulation of what the kernel would do on each write).
 */
export interface CgroupFs {
  readFile(path: string): Promise<string>;
  /** One write(2) of the whole string to an existing file, never creating or truncating it. */
  writeFile(path: string, data: string): Promise<void>;
  /** Not recursive: EEXIST and ENOENT surface as errors. */
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** cgroup v1 only (v2 refuses): EEXIST when the target is there. */
  rename(from: string, to: string): Promise<void>;
  /** Names of the subdirectories (child cgroups). */
  subdirs(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /** chown(2); optional so fakes without owners need not have it (delegate then does nothing). */
  chown?(path: string, uid: number, gid: number): Promise<void>;
}

export interface CgroupSys {
  fs: CgroupFs;
  /** Send a signal to a host PID; a PID that is already gone is not an error. */
  kill(pid: number, signal: NodeJS.Signals): void;
  sleep(ms: number): Promise<void>;
  now(): number;
}

/**
 * cgroupfs files parse each write(2) on its own and ignore offsets: one write per value, opened
 * without O_CREAT/O_TRUNC (cgroupfs refuses both), and a short write is an error, not a retry.
 */
async function writeOnce(path: string, data: string): Promise<void> {
  const fh = await fsp.open(path, 'r+');
  try {
    const buf = Buffer.from(data);
    const { bytesWritten } = await fh.write(buf, 0, buf.length);
    if (bytesWritten !== buf.length) {
      throw Object.assign(new Error(`short write to ${path}`), { code: 'EIO' });
    }
  } finally {
    await fh.close();
  }
}

export const nodeCgroupFs: CgroupFs = {
  readFile: (p) => fsp.readFile(p, 'utf8'),
  rename: (from, to) => fsp.rename(from, to),
  writeFile: writeOnce,
  mkdir: async (p) => {
    await fsp.mkdir(p);
  },
  rmdir: (p) => fsp.rmdir(p),
  chown: (p, uid, gid) => fsp.chown(p, uid, gid),
  subdirs: async (p) => (await fsp.readdir(p, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name),
  exists: async (p) => {
    try {
      await fsp.access(p);
      return true;
    } catch {
      return false;
    }
  },
};

export const realSys: CgroupSys = {
  fs: nodeCgroupFs,
  kill(pid, signal) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => Date.now(),
};
