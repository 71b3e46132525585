import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchEnv } from './env.js';
import { LxdDaemon } from './lxd.js';
import { failure, waitForSystemd } from './measure.js';
import { Interrupted, now, pause, run, type RunResult } from './proc.js';
import { summarize, type Summary } from './stats.js';
import { lxdStoragePeer, measureStorage, tslxcStoragePeer, type StoragePeer, type StorageResults } from './storage.js';

/**
 * The parts measured against LXD 5.0 (Debian's lxd package): image import (#3) and the storage
 * drivers (#4). One private LXD daemon serves both; LXD gets the Debian image the way a user
 * would move it between the two tools: `tslxc image export` (LXD's unified tarball) and
 * `lxc image import`, which also checks the format round trip.
 */

export interface ImportResults {
  file: string;
  bytes: number;
  exportMs: number;
  sha256: string;
  runs: number;
  times: Record<string, Summary>;
  /** `sha256sum FILE && cp FILE COPY`, run in the same rounds: what an import at the speed of a copy is held to (#17) */
  hashCopy?: Summary;
  /** the first launch of the image just imported: the command, and until systemd inside is running */
  firstLaunchCmd?: Record<string, Summary>;
  firstLaunch?: Record<string, Summary>;
  firstLaunchPools?: Record<string, string>;
  fingerprints: Record<string, string>;
  failures: string[];
  checks: { what: string; ok: boolean; detail: string }[];
}

export interface LxdPartsResults {
  lxd?: { version: string; preseed: string; daemonPid?: number };
  imports?: ImportResults;
  storage?: StorageResults;
  notes: string[];
}

export interface LxdPartsOptions {
  storage: boolean;
  import: boolean;
  lxd: boolean;
  lxdPrivileged: boolean;
  storageRuns: number;
  importRuns: number;
  btrfsSize: string;
}

const LXD_IMAGE = 'bench-debian';
const TSLXC = 'tslxc';
const LXD = 'LXD';

/** Fills `res` as it goes, so a failure in the storage part keeps the import figures. */
export async function measureLxdParts(env: BenchEnv, o: LxdPartsOptions, log: (s: string) => void, res: LxdPartsResults): Promise<void> {
  await env.prepareTslxc();
  // The cached Debian image in tslxc's store (built from the host-wide build cache when missing).
  log('lxd parts: tslxc image build debian (cached)');
  const b = await env.tslxc(['image', 'build', 'debian'], { timeoutMs: 900_000 });
  if (b.code !== 0) throw failure('tslxc image build debian', b);

  let lxd: LxdDaemon | undefined;
  if (o.lxd) {
    lxd = new LxdDaemon(env, o.btrfsSize);
    const daemon = lxd;
    env.onCleanup('LXD', (clog) => daemon.cleanup(clog));
    await lxd.start(log);
    const preseed = await lxd.preseed();
    res.lxd = { version: lxd.version, preseed, daemonPid: lxd.pid };
    res.notes.push(
      `LXD ${lxd.version}: a daemon of the bench's own (LXD_DIR under the bench root), pools bench-dir (dir) and bench-btrfs (btrfs on a ${o.btrfsSize} loop file LXD makes), no network; its outgoing HTTP goes to a closed loopback proxy`,
    );
  }

  // LXD's unified tarball of tslxc's debian image: the file both tools import.
  const dir = path.join(env.root, 'export');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'debian.tar.gz');
  log(`lxd parts: tslxc image export debian ${file}`);
  const ex = await env.tslxc(['image', 'export', 'debian', file], { timeoutMs: 600_000 });
  if (ex.code !== 0) throw failure('tslxc image export debian', ex);
  const sha256 = await sha256File(file);

  if (o.import) res.imports = await measureImport(env, lxd, file, sha256, ex.ms, o.importRuns, log);
  if (lxd && !(await lxdHasAlias(lxd, LXD_IMAGE))) await ok(lxd.lxc(['image', 'import', file, '--alias', LXD_IMAGE]), `lxc image import ${file}`);

  if (o.storage) {
    const peers: StoragePeer[] = [];
    // A dir pool twice: as made (spare roots on: a launch renames a copy made in the background
    // after the previous one) and with spare_roots=false (every launch copies the image).
    for (const [driver, pool, extra] of [
      ['dir', 'bdir', []],
      ['dir', 'bdirn', ['spare_roots=false']],
      ['overlay', 'boverlay', []],
      ['btrfs', 'bbtrfs', [`size=${o.btrfsSize}`]],
    ] as const) {
      const c = await env.tslxc(['storage', 'create', pool, driver, ...extra]);
      if (c.code !== 0) throw failure(`tslxc storage create ${pool} ${driver}`, c);
      peers.push(tslxcStoragePeer(env, driver, pool, driver === 'dir' && !extra.length));
    }
    if (lxd) {
      for (const pool of lxd.pools) {
        peers.push(lxdStoragePeer(env, lxd, pool.driver, pool.name, LXD_IMAGE, false));
        if (o.lxdPrivileged) peers.push(lxdStoragePeer(env, lxd, pool.driver, pool.name, LXD_IMAGE, true));
      }
    }
    res.storage = await measureStorage(peers, o.storageRuns, `bench-${env.id}`, log);
  }
}

async function measureImport(
  env: BenchEnv,
  lxd: LxdDaemon | undefined,
  file: string,
  sha256: string,
  exportMs: number,
  runs: number,
  log: (s: string) => void,
): Promise<ImportResults> {
  const r: ImportResults = { file, bytes: fs.statSync(file).size, exportMs, sha256, runs, times: {}, fingerprints: {}, failures: [], checks: [] };
  const alias = 'bench-import';
  type Tool = {
    key: string;
    pool: string;
    run: () => Promise<RunResult>;
    fingerprint: () => Promise<string>;
    remove: () => Promise<RunResult>;
    launch: (name: string) => Promise<RunResult>;
    probe: (name: string) => Promise<RunResult>;
    removeContainer: (name: string) => Promise<RunResult>;
  };
  const tools: Tool[] = [
    {
      key: TSLXC,
      pool: 'default',
      run: () => env.tslxc(['image', 'import', file, '--alias', alias], { timeoutMs: 600_000 }),
      fingerprint: async () => JSON.parse((await ok(env.tslxc(['image', 'info', alias, '--format', 'json']), 'tslxc image info')).stdout).fingerprint,
      remove: () => env.tslxc(['image', 'delete', alias]),
      launch: (n) => env.tslxc(['launch', alias, n], { timeoutMs: 300_000 }),
      probe: (n) => env.tslxc(['exec', n, '--', 'systemctl', 'is-system-running', '--wait']),
      removeContainer: (n) => env.tslxc(['delete', '--force', n], { timeoutMs: 300_000 }),
    },
  ];
  if (lxd) {
    tools.push({
      key: LXD,
      pool: lxd.pools[0].name,
      run: () => lxd.lxc(['image', 'import', file, '--alias', alias]),
      fingerprint: () => lxdFingerprint(lxd, alias),
      remove: () => lxd.lxc(['image', 'delete', alias]),
      launch: (n) => {
        lxd.instances.add(n);
        env.cgroupNames.add(`lxc.payload.${n}`);
        env.cgroupNames.add(`lxc.monitor.${n}`);
        return lxd.lxc(['launch', alias, n, '-s', lxd.pools[0].name, '-q']);
      },
      probe: (n) => lxd.lxc(['exec', n, '--', 'systemctl', 'is-system-running', '--wait']),
      removeContainer: (n) => lxd.lxc(['delete', '--force', n]),
    });
  }
  const samples: Record<string, number[]> = Object.fromEntries(tools.map((t) => [t.key, []]));
  // The first launch of the image just imported: on a dir pool both unpack it into the container.
  const firstCmd: Record<string, number[]> = Object.fromEntries(tools.map((t) => [t.key, []]));
  const first: Record<string, number[]> = Object.fromEntries(tools.map((t) => [t.key, []]));
  r.firstLaunchPools = Object.fromEntries(tools.map((t) => [t.key, t.pool]));
  // The floor an import is held to (#17: at most twice it): hash and copy the same file, in the same rounds.
  const hashCopy: number[] = [];
  const copy = path.join(path.dirname(file), 'hash-copy');
  const hashAndCopy = () => run('sh', ['-c', 'sha256sum "$1" >/dev/null && cp "$1" "$2"', 'sh', file, copy]);
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? tools : [...tools].reverse();
    await pause(500);
    const hc = await hashAndCopy();
    fs.rmSync(copy, { force: true });
    if (hc.code === 0) hashCopy.push(hc.ms);
    for (const t of order) {
      try {
        await pause(500);
        const x = await t.run();
        if (x.code !== 0) throw failure(`${t.key} image import`, x);
        samples[t.key].push(x.ms);
        if (i === 0) r.fingerprints[t.key] = await t.fingerprint();
        const name = `bench-first-${t.key === TSLXC ? 't' : 'l'}${i}`;
        await pause(500);
        const l0 = now();
        const launched = await t.launch(name);
        if (launched.code !== 0) throw failure(`${t.key} launch ${alias} ${name}`, launched);
        const cmdMs = now() - l0;
        const settled = await waitForSystemd(() => t.probe(name), `${t.key} exec ${name} -- systemctl is-system-running --wait`, l0);
        firstCmd[t.key].push(cmdMs);
        first[t.key].push(settled.ms);
        log(`import: ${t.key} first launch ${i + 1}/${runs}: ${Math.round(cmdMs)} ms, systemd ${settled.state} at ${Math.round(settled.ms)} ms`);
        const dc = await t.removeContainer(name);
        if (dc.code !== 0) throw failure(`${t.key} delete ${name}`, dc);
        const d = await t.remove();
        if (d.code !== 0) throw failure(`${t.key} image delete ${alias}`, d);
        log(`import: ${t.key} run ${i + 1}/${runs}: ${Math.round(x.ms)} ms`);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        r.failures.push(`${t.key}: ${(e as Error).message}`);
        log(`import: ${t.key} run ${i + 1}: FAILED: ${(e as Error).message}`);
        await t.remove().catch(() => undefined);
      }
    }
  }
  for (const t of tools) r.times[t.key] = summarize(samples[t.key]);
  if (hashCopy.length) r.hashCopy = summarize(hashCopy);
  r.firstLaunchCmd = Object.fromEntries(tools.filter((t) => firstCmd[t.key].length).map((t) => [t.key, summarize(firstCmd[t.key])]));
  r.firstLaunch = Object.fromEntries(tools.filter((t) => first[t.key].length).map((t) => [t.key, summarize(first[t.key])]));

  // The format round trip: LXD's fingerprint of the tarball is its sha256; tslxc's import of it
  // must give the same one; LXD's own export of the image, imported by tslxc, too.
  const check = (what: string, okay: boolean, detail: string) => r.checks.push({ what, ok: okay, detail });
  if (r.fingerprints[TSLXC])
    check("tslxc import: fingerprint = sha256 of the tarball (LXD's rule)", r.fingerprints[TSLXC] === sha256, r.fingerprints[TSLXC].slice(0, 12));
  if (lxd && r.fingerprints[LXD]) {
    check('LXD import of `tslxc image export`: fingerprint = sha256 of the tarball', r.fingerprints[LXD] === sha256, r.fingerprints[LXD].slice(0, 12));
    await ok(lxd.lxc(['image', 'import', file, '--alias', LXD_IMAGE]), `lxc image import ${file}`);
    const back = path.join(env.root, 'export', 'from-lxd');
    fs.mkdirSync(back);
    await ok(lxd.lxc(['image', 'export', LXD_IMAGE, path.join(back, 'debian')]), 'lxc image export');
    const files = fs.readdirSync(back);
    if (files.length === 1) {
      const f = path.join(back, files[0]);
      const same = (await sha256File(f)) === sha256;
      const t = await env.tslxc(['image', 'import', f, '--alias', 'bench-roundtrip']);
      if (t.code !== 0) check('tslxc import of `lxc image export`', false, t.stderr.trim());
      else {
        const fp = JSON.parse((await ok(env.tslxc(['image', 'info', 'bench-roundtrip', '--format', 'json']), 'tslxc image info')).stdout).fingerprint as string;
        check(
          `tslxc import of \`lxc image export\` (${files[0]}, ${same ? 'the same bytes' : 'other bytes'}): same fingerprint`,
          fp === r.fingerprints[LXD],
          fp.slice(0, 12),
        );
        await env.tslxc(['image', 'delete', 'bench-roundtrip']);
      }
    } else {
      check('lxc image export wrote one unified tarball', false, files.join(' '));
    }
    fs.rmSync(back, { recursive: true, force: true });
  }
  return r;
}

/** The fingerprint of the LXD image with this alias (`lxc image info` has no JSON output in 5.0). */
async function lxdFingerprint(lxd: LxdDaemon, alias: string): Promise<string> {
  const l = await ok(lxd.lxc(['image', 'list', '--format', 'json']), 'lxc image list');
  const img = (JSON.parse(l.stdout) as { fingerprint: string; aliases: { name: string }[] }[]).find((i) => i.aliases.some((a) => a.name === alias));
  if (!img) throw new Error(`LXD has no image with alias ${alias}`);
  return img.fingerprint;
}

async function lxdHasAlias(lxd: LxdDaemon, alias: string): Promise<boolean> {
  const r = await lxd.lxc(['image', 'alias', 'list', '--format', 'json']);
  return r.code === 0 && (JSON.parse(r.stdout) as { name: string }[]).some((a) => a.name === alias);
}

async function ok(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw failure(what, r);
  return r;
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}
