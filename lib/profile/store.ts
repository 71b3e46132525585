import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TslxcError } from '../errors.js';
import { mkdirp } from '../util/fs.js';
import { readYaml, writeYamlAtomic } from '../util/yaml.js';
import type { Paths } from '../state/paths.js';
import { bumpGeneration, scope } from '../state/generations.js';

/**
 * Profiles: reusable config keys and devices. Built-in ones ship in profiles/ (read-only); the
 * user's live in TSLXC_DIR/profiles and shadow a built-in of the same name (editing `default`
 * writes the user's copy).
 */
export type Device = Record<string, string>;

export interface Profile {
  name: string;
  description: string;
  config: Record<string, string>;
  devices: Record<string, Device>;
  builtin: boolean;
}

export const builtinProfilesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../profiles');
const userDir = (p: Paths) => path.join(p.stateDir, 'profiles');

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
export function validateProfileName(name: string): string {
  if (!NAME.test(name))
    throw new TslxcError(`Invalid profile name "${name.slice(0, 70)}"`, 'use letters, digits, ".", "_" and "-", at most 63', undefined, { kind: 'invalid' });
  return name;
}

export function parseProfile(name: string, doc: unknown, builtin: boolean, where: string): Profile {
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new TslxcError(`Invalid profile ${where}`, 'it must be a YAML mapping');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!['name', 'description', 'config', 'devices'].includes(k))
      throw new TslxcError(`Invalid profile ${where}`, `unknown key "${k}" (allowed: description, config, devices)`);
  }
  const config: Record<string, string> = {};
  if (d.config !== undefined && d.config !== null) {
    if (typeof d.config !== 'object' || Array.isArray(d.config))
      throw new TslxcError(`Invalid profile ${where}`, '"config" must be a mapping of keys to values');
    for (const [k, v] of Object.entries(d.config)) config[k] = String(v);
  }
  const devices: Record<string, Device> = {};
  if (d.devices !== undefined && d.devices !== null) {
    if (typeof d.devices !== 'object' || Array.isArray(d.devices))
      throw new TslxcError(`Invalid profile ${where}`, '"devices" must be a mapping of device names to devices');
    for (const [dn, dev] of Object.entries(d.devices as Record<string, unknown>)) {
      if (!dev || typeof dev !== 'object' || Array.isArray(dev)) throw new TslxcError(`Invalid profile ${where}`, `device "${dn}" must be a mapping`);
      const out: Device = {};
      for (const [k, v] of Object.entries(dev)) out[k] = String(v);
      if (!out.type) throw new TslxcError(`Invalid profile ${where}`, `device "${dn}" has no "type"`);
      devices[dn] = out;
    }
  }
  return { name, description: d.description === undefined ? '' : String(d.description), config, devices, builtin };
}

export function loadProfile(p: Paths, name: string): Profile {
  validateProfileName(name);
  for (const [dir, builtin] of [
    [userDir(p), false],
    [builtinProfilesDir, true],
  ] as const) {
    const file = path.join(dir, `${name}.yaml`);
    if (fs.existsSync(file)) return parseProfile(name, readYaml(file), builtin, file);
  }
  throw new TslxcError(`Profile "${name}" not found`, undefined, 'see "tslxc profile list"', { kind: 'not-found' });
}

export function profileExists(p: Paths, name: string): boolean {
  validateProfileName(name);
  return fs.existsSync(path.join(userDir(p), `${name}.yaml`)) || fs.existsSync(path.join(builtinProfilesDir, `${name}.yaml`));
}

export function listProfiles(p: Paths): Profile[] {
  const names = new Set<string>();
  for (const dir of [userDir(p), builtinProfilesDir]) {
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.yaml') && NAME.test(f.slice(0, -5))) names.add(f.slice(0, -5));
    } catch {
      /* no user profiles yet */
    }
  }
  return [...names].sort().map((n) => loadProfile(p, n));
}

export function saveProfile(p: Paths, profile: Profile): void {
  validateProfileName(profile.name);
  mkdirp(userDir(p), 0o700);
  writeYamlAtomic(path.join(userDir(p), `${profile.name}.yaml`), { description: profile.description, config: profile.config, devices: profile.devices });
  bumpGeneration(p, scope.profile(profile.name));
}

export function removeUserProfile(p: Paths, name: string): void {
  fs.rmSync(path.join(userDir(p), `${validateProfileName(name)}.yaml`), { force: true });
  bumpGeneration(p, scope.profile(name));
}
