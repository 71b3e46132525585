import fs from 'node:fs';
import { TslxcError } from '../errors.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';
import { containerConfigFile, containerDir, containersDir, type Paths } from '../state/paths.js';
import { validateInstanceName } from '../util/names.js';
import { finishJournal } from '../storage/journal.js';

/**
 * A container's config.yaml. `status` is what tslxc last did to it, not whether it runs: whether it
 * runs is read from the live processes (see state.ts), so a SIGKILLed CLI or monitor can't make it
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
  // what is read is the old state or the new one (storage/journal.ts; one stat when there is none).
  finishJournal(containerDir(p, name));
  const cfg = readYamlIfExists<InstanceConfig>(containerConfigFile(p, name));
  if (!cfg) throw new TslxcError(`Container "${name}" not found`, undefined, 'see "tslxc list"');
  return cfg;
}

export function saveConfig(p: Paths, cfg: InstanceConfig): void {
  writeYamlAtomic(containerConfigFile(p, cfg.name), cfg, 0o600);
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
    try {
      validateInstanceName(n);
      return fs.existsSync(containerDir(p, n));
    } catch {
      return false;
    }
  }).sort();
}
