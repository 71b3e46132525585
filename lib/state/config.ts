import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { readTextIfExists } from '../util/fs.js';
import { containerConfigFile, containerDir, containersDir, type Paths } from './paths.js';
import { validateInstanceName } from '../util/names.js';
import { finishJournal, journalFile } from './journal.js';
import { isAlive, parseRef, selfRef } from '../util/proc.js';
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
}

export function configExists(p: Paths, name: string): boolean {
  return fs.existsSync(containerConfigFile(p, name));
}

export function loadConfig(p: Paths, name: string): InstanceConfig {
  validateInstanceName(name);
  // A restore (or another journaled commit) a killed tslxc left half-renamed is finished first, so
  // what is read is the old state or the new one (journal.ts; one stat when there is none).
  finishJournal(containerDir(p, name));
  const cfg = readYamlIfExists<InstanceConfig>(containerConfigFile(p, name)) ?? (finishRenameTo(p, name) ? readYamlIfExists<InstanceConfig>(containerConfigFile(p, name)) : undefined);
  if (!cfg) throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"');
  return cfg;
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

/** A committed rename to NAME a killed tslxc left: finished now; true when it was. */
function finishRenameTo(p: Paths, to: string): boolean {
  const from = renameSource(p, to);
  if (!from) return false;
  if (finishJournal(containerDir(p, from)) === 'finished') return true;
  sweepRenameMarker(p, to);
  return false;
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
    finishJournal(containerDir(this.p, name));
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(containerConfigFile(this.p, name), { bigint: true });
    } catch {
      throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"');
    }
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

/** Names of every container (valid names only: stray entries are not containers). */
export function listNames(p: Paths): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(containersDir(p));
  } catch {
    return [];
  }
  return entries.filter((n) => {
    if (n.startsWith(MARKER_PREFIX)) sweepRenameMarker(p, n.slice(MARKER_PREFIX.length));
    try {
      validateInstanceName(n);
      return fs.existsSync(containerDir(p, n));
    } catch {
      return false;
    }
  }).sort();
}
