import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { readTextIfExists } from '../util/fs.js';
import { containerConfigFile, containerDir, containersDir, type Paths } from './paths.js';
import { validateInstanceName } from '../util/names.js';
import { finalPath, finishJournal, journalFile, readJournal, sweepRestoreTemps } from './journal.js';
import { isAlive, parseRef, pidAlive, selfRef } from '../util/proc.js';
import { bumpGeneration, scope } from '../state/generations.js';

/**
 * A container's config.yaml. `status` is what tslxc last did to it, not whether it runs: whether it
 * runs is read from the live processes (see runtime.ts), so a SIGKILLed CLI or monitor can't make it
 * lie. `creating` marks a create that has not finished: such a container is reported as Error and
 * `delete` removes it.
 */
export interface InstanceConfig {
  name: string;
  status: 'creating' | 'created' | 'started' | 'stopped';
  created_at: string;
  last_used_at?: string;
  hostname: string;
  image: {
    fingerprint: string;
    alias?: string;
    os?: string;
    release?: string;
    description?: string;
  };
  /** What PID 1 is and how it is asked to stop: from the image, overridable per container. */
  init: string[];
  stop_signal: string;
  environment: Record<string, string>;
  profiles: string[];
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  /** Free text the user gave it (LXD's description); absent: none. */
  description?: string;
  /** Deleted when it stops, as LXD's ephemeral instances (lib/instance/ephemeral.ts). */
  ephemeral?: boolean;
}

export function configExists(p: Paths, name: string): boolean {
  return fs.existsSync(containerConfigFile(p, name));
}

/**
 * A container's config as it is committed, without writing anything: a journal a killed tslxc left
 * (a restore, a rename) is read, not finished, and the config is the one its commit made (the
 * commit point says which state is the container's; the next command that takes the lock finishes
 * the renames, Context.withInstanceLock). A name a committed rename is moving to is found through
 * its marker. No journal costs one failed open.
 */
export function loadConfig(p: Paths, name: string): InstanceConfig {
  validateInstanceName(name);
  const file = committedConfigFile(p, name);
  const cfg = file === undefined ? undefined : readYamlIfExists<InstanceConfig>(file);
  if (!cfg) throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"', { kind: 'not-found' });
  return cfg;
}

/** Where NAME's committed config.yaml is now (see loadConfig); undefined when NAME is not a container. */
function committedConfigFile(p: Paths, name: string): string | undefined {
  const file = containerConfigFile(p, name);
  const own = readJournal(containerDir(p, name));
  if (own) return finalPath(own, file);
  if (fs.existsSync(file)) return file;
  const from = renameSource(p, name);
  const theirs = from === undefined ? undefined : readJournal(containerDir(p, from));
  return theirs && finalPath(theirs, file);
}

/**
 * A rename's journal is in the container's dir under its old name until the dir itself moves, its
 * last step: this marker, written before the commit and removed after it, leads a command that
 * asks for the new name there (renameInstance in instance/manage.ts). It holds "OLD_NAME PID STARTTIME".
 */
const MARKER_PREFIX = '.renaming-';
export const renameMarker = (p: Paths, to: string) => path.join(containersDir(p), `${MARKER_PREFIX}${to}`);

export function writeRenameMarker(p: Paths, from: string, to: string): void {
  const me = selfRef();
  fs.writeFileSync(renameMarker(p, to), `${from} ${me.pid} ${me.startTime}\n`, { mode: 0o600 });
}

/**
 * What a killed tslxc left of an operation on NAME, finished or removed; run by Context when it
 * takes NAME's lock, and only there (reads see the committed state without writing, loadConfig).
 * A journal in NAME's dir is finished (a restore, a rename from NAME); one in another dir that a
 * rename to NAME committed is finished too: the replayers' own lock (journal.ts) keeps two
 * recoveries apart, and the renamer held both names' locks only to keep live commands out. A
 * rename killed before its commit leaves a marker and a temp config: both go. A journal that
 * cannot be finished now (its writer runs, a pool is not mounted yet) is left for later: prepareRootfs
 * asks again once the pool is mounted.
 */
export function recoverInstance(p: Paths, name: string): void {
  const dir = containerDir(p, name);
  if (!finish(p, dir)) return;
  const from = renameSource(p, name);
  if (from && !finish(p, containerDir(p, from))) return;
  sweepRenameMarker(p, name);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  // A rename from NAME killed before its commit: its temp config names where it was going.
  for (const to of deadRenameTargets(dir, entries)) sweepRenameMarker(p, to);
  sweepRestoreTemps(dir, entries);
}

/**
 * Finishes the journal in DIR; false while it is pending. The commit changed the config of the
 * container (of both names, for a rename): their generations are bumped as its writer would have
 * after it, so no start plan made before outlives it.
 */
function finish(p: Paths, dir: string): boolean {
  const view = readJournal(dir);
  const state = finishJournal(dir);
  if (state === 'finished' && view) {
    const names = new Set([path.basename(dir)]);
    for (const [src, dst] of view.journal.renames) if (src === dir || dst === dir) names.add(path.basename(src === dir ? dst : src));
    for (const n of names) configWritten(p, n, undefined, {});
  }
  return state !== 'pending';
}

/** The names in the temp configs dead renames left in DIR (`.config-rename-PID.yaml`). */
function deadRenameTargets(dir: string, entries: string[]): string[] {
  return entries.flatMap((e) => {
    const m = /^\.config-rename-(\d+)\.yaml$/.exec(e);
    if (!m || pidAlive(Number(m[1]))) return [];
    const to = readYamlIfExists<InstanceConfig>(path.join(dir, e))?.name;
    return typeof to === 'string' ? [to] : [];
  });
}

function renameSource(p: Paths, to: string): string | undefined {
  const from = readTextIfExists(renameMarker(p, to))?.split(' ')[0]?.trim();
  if (!from || from === to) return undefined;
  try {
    return validateInstanceName(from);
  } catch {
    return undefined;
  }
}

/** The marker of a rename killed before its commit: its writer is dead and no journal names it. */
function sweepRenameMarker(p: Paths, to: string): void {
  const marker = renameMarker(p, to);
  const text = readTextIfExists(marker);
  if (text === undefined || isAlive(parseRef(text.split(' ').slice(1).join(' ')))) return;
  const from = renameSource(p, to);
  if (from && readTextIfExists(journalFile(containerDir(p, from)))?.includes(JSON.stringify(marker))) return;
  fs.rmSync(marker, { force: true });
}

/**
 * Parsed configs for `list`, kept in RUN_DIR/list-cache.json (0600, like config.yaml): parsing
 * every config.yaml with js-yaml is most of a long list's own work, where JSON.parse of the same
 * is negligible. An entry is used only while its file is the same: inode (saveConfig renames a
 * new file into place), size, mtime and ctime in nanoseconds.
 */
export class ConfigCache {
  private entries: Record<string, { key: string; cfg: InstanceConfig }> = {};
  private changed = false;
  private readonly file: string;

  constructor(private readonly p: Paths) {
    this.file = path.join(p.runDir, 'list-cache.json');
    try {
      const data = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (data && typeof data === 'object' && data.version === 1 && data.entries && typeof data.entries === 'object') this.entries = data.entries;
    } catch {
      /* none yet, or unreadable: rebuilt */
    }
  }

  load(name: string): InstanceConfig {
    validateInstanceName(name);
    // A journal a killed tslxc left, or a name a rename is moving to: read through it, not cached
    // (rare, and the files it names are about to move).
    const st = fs.existsSync(journalFile(containerDir(this.p, name)))
      ? undefined
      : fs.statSync(containerConfigFile(this.p, name), { bigint: true, throwIfNoEntry: false });
    if (!st) return loadConfig(this.p, name);
    const key = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const hit = this.entries[name];
    if (hit?.key === key && hit.cfg?.name === name) return hit.cfg;
    const cfg = loadConfig(this.p, name);
    this.entries[name] = { key, cfg };
    this.changed = true;
    return cfg;
  }

  /** Writes the cache back (atomically) when something was parsed, without the names now gone. */
  save(names: string[]): void {
    const keep = new Set(names);
    for (const n of Object.keys(this.entries)) {
      if (!keep.has(n)) {
        delete this.entries[n];
        this.changed = true;
      }
    }
    if (!this.changed) return;
    try {
      fs.mkdirSync(this.p.runDir, { recursive: true, mode: 0o711 });
      const tmp = `${this.file}.${process.pid}`;
      fs.writeFileSync(tmp, JSON.stringify({ version: 1, entries: this.entries }), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch {
      /* a cache: list answered anyway */
    }
  }
}

export function saveConfig(p: Paths, cfg: InstanceConfig): void {
  const file = containerConfigFile(p, cfg.name);
  let before: InstanceConfig | undefined;
  try {
    before = readYamlIfExists<InstanceConfig>(file);
  } catch {
    /* unreadable: its claims are taken as changed */
  }
  writeYamlAtomic(file, cfg, 0o600);
  configWritten(p, cfg.name, before, cfg);
}

/**
 * Every write of a container's config ends here (state/generations.ts): its generation is
 * bumped, and the addresses' one when the addresses it claims changed (a start with a nic checks
 * its address against every container's claims). `before` undefined: unknown, taken as changed.
 */
export function configWritten(p: Paths, name: string, before: Claims | undefined, after: Claims): void {
  if (!before || addressClaims(before).join(' ') !== addressClaims(after).join(' ')) bumpGeneration(p, scope.addresses(), scope.container(name));
  bumpGeneration(p, scope.container(name));
}

/** The IPv4 addresses a container's own config claims: allocated (volatile) or static on a nic. */
type Claims = Partial<Pick<InstanceConfig, 'config' | 'devices'>>;

export function addressClaims(cfg: Claims): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(cfg.config ?? {})) if (/^volatile\..+\.ipv4\.address$/.test(k)) out.push(String(v));
  for (const d of Object.values(cfg.devices ?? {})) if (d.type === 'nic' && d['ipv4.address']) out.push(d['ipv4.address']);
  return out.sort();
}

/**
 * Names of every container (valid names only: stray entries are not containers), as committed: a
 * container a killed rename committed is listed under its new name though its dir has the old one
 * (loadConfig reads it there). Nothing is written: markers are for the lock's recovery to sweep.
 */
export function listNames(p: Paths): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(containersDir(p));
  } catch {
    return [];
  }
  const names = new Set<string>();
  const renamed = new Map<string, string>();
  for (const n of entries) {
    if (n.startsWith(MARKER_PREFIX)) {
      const to = n.slice(MARKER_PREFIX.length);
      const from = renameSource(p, to);
      const view = from === undefined ? undefined : readJournal(containerDir(p, from));
      if (view && finalPath(view, containerDir(p, from!)) === undefined) renamed.set(from!, to);
      continue;
    }
    try {
      validateInstanceName(n);
      if (fs.existsSync(containerDir(p, n))) names.add(n);
    } catch {
      /* not a container */
    }
  }
  for (const [from, to] of renamed) {
    if (!names.delete(from)) continue;
    try {
      names.add(validateInstanceName(to));
    } catch {
      /* a marker of another name's shape is not ours */
    }
  }
  return [...names].sort();
}
