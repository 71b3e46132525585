import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { TslxcError } from '../errors.js';
import { validateGatewayUserName } from '../gateway/users.js';
import { validateNetworkKey } from '../network/store.js';
import { validateNetworkName } from '../network/names.js';
import { validateProfileName } from '../profile/store.js';
import { validatePoolName } from '../storage/pool.js';
import { validateVolumeName } from '../storage/volume.js';
import { validateDeviceName } from '../config/schema.js';
import { validateAlias, validateInstanceName } from '../util/names.js';
import { parseLabYaml, type Field } from './source.js';

/**
 * The lab file (see labs/ for an example and the README for every key):
 *
 *   name: LAB                         a DNS label; marks everything the lab makes
 *   description: TEXT
 *   network: {name, ipv4.address, ipv4.nat, ...network keys}
 *   gateway: {port, host}
 *   defaults: {image, profiles, count, naming, config}
 *   volumes: [{name, path, scope: shared|member, pool, readonly}]
 *   members: [{name, keys, key_files, ...any of the defaults}]
 *
 * Parsing checks everything that needs no host state (shape, names, keys, the naming pattern's
 * names and collisions); lib/lab/check.ts checks the rest (profiles, images, existing containers).
 */

export interface MemberSettings {
  image: string;
  profiles: string[];
  count: number;
  /** {lab}, {member} and {n} are replaced; default "{member}" for one container, "{member}-{n}" for more */
  naming: string;
  config: Record<string, string>;
}

export interface PublicKey {
  /** the OpenSSH line as given, trimmed */
  line: string;
  type: string;
  comment: string;
  /** SHA256:... as ssh-keygen -l prints it */
  fingerprint: string;
}

export interface LabContainer {
  name: string;
  member: string;
  /** 1-based index among the member's containers */
  n: number;
}

export interface LabMember extends MemberSettings {
  name: string;
  keys: PublicKey[];
  containers: LabContainer[];
  /** where the member is declared, for host checks that refuse it */
  at: Field;
  fields: Partial<Record<keyof MemberSettings, Field>>;
}

export interface LabVolume {
  name: string;
  path: string;
  scope: 'shared' | 'member';
  pool: string;
  readonly: boolean;
  at: Field;
}

export interface LabSpec {
  file: string;
  name: string;
  description: string;
  network: { name: string; config: Record<string, string>; at: Field };
  gateway: { port: number; host?: string };
  defaults: MemberSettings;
  defaultFields: Partial<Record<keyof MemberSettings, Field>>;
  volumes: LabVolume[];
  members: LabMember[];
}

export const DEFAULT_GATEWAY_PORT = 2222;
const SETTINGS = ['image', 'profiles', 'count', 'naming', 'config'] as const;
const MAX_COUNT = 64;

export function readLabFile(file: string): LabSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TslxcError(`Cannot read lab file ${file}`, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  return parseLab(text, file);
}

export function parseLab(text: string, file: string): LabSpec {
  const root = parseLabYaml(text, file);
  if (!root.present) root.fail('the file is empty', 'see labs/example.yaml');
  const top = root.map(['name', 'description', 'network', 'gateway', 'defaults', 'volumes', 'members'], 'lab file');
  const need = (k: string) => top.get(k) ?? root.fail(`"${k}" is required`);

  const nameField = need('name');
  const name = nameField.string();
  if (!/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name))
    nameField.fail(`invalid lab name "${name.slice(0, 40)}"`, 'a lab name is a DNS label of at most 32 characters, like "intro-linux"');
  const description = top.get('description')?.text() ?? '';

  const network = parseNetwork(top.get('network'), name, root);
  const gateway = parseGateway(top.get('gateway'));
  const defaultFields: LabSpec['defaultFields'] = {};
  const defaults = parseSettings(top.get('defaults'), { image: 'busybox', profiles: ['default'], count: 1, naming: '', config: {} }, defaultFields, 'defaults');
  const volumes = parseVolumes(top.get('volumes'), name);
  const members = parseMembers(need('members'), defaults, file, name);

  // The names the patterns give: valid, and each container is one member's only.
  const seen = new Map<string, LabMember>();
  for (const m of members) {
    for (const c of m.containers) {
      const where = m.fields.naming ?? defaultFields.naming ?? m.at;
      where.check(() => validateInstanceName(c.name), 'change "naming" so it gives DNS labels (lowercase letters, digits and "-")');
      const other = seen.get(c.name);
      if (other) {
        where.fail(
          `the naming pattern gives "${c.name}" twice (${other.name === m.name ? `member "${m.name}"` : `members "${other.name}" and "${m.name}"`})`,
          m.count > 1 ? 'put {n} in the pattern' : 'put {member} in the pattern',
        );
      }
      seen.set(c.name, m);
    }
  }
  for (const v of volumes) {
    const names = v.scope === 'shared' ? [volumeName(name, v)] : members.map((m) => volumeName(name, v, m.name));
    for (const n of names) v.at.check(() => validateVolumeName(n), 'use a shorter volume, lab or member name');
  }
  return { file, name, description, network, gateway, defaults, defaultFields, volumes, members };
}

/** The storage volume a lab volume is: LAB-NAME (shared) or LAB-MEMBER-NAME (one per member). */
export function volumeName(lab: string, v: { name: string; scope: 'shared' | 'member' }, member?: string): string {
  return v.scope === 'shared' ? `${lab}-${v.name}` : `${lab}-${member}-${v.name}`;
}

function parseNetwork(f: Field | undefined, lab: string, root: Field): LabSpec['network'] {
  const config: Record<string, string> = { 'ipv4.address': 'auto', 'ipv4.nat': 'true' };
  let name: string | undefined;
  for (const [k, v] of f?.present ? f.entries('network') : []) {
    if (k === 'name') name = v.check(() => validateNetworkName(v.string()));
    else config[k] = v.check(() => validateNetworkKey(k, v.text()), 'see "tslxc network create --help" for the keys');
  }
  if (name === undefined) {
    // Named after the lab by default; a bridge name has at most 15 characters.
    name = `lab-${lab}`;
    if (name.length > 15)
      (f?.present ? f : root).fail(`the lab's network would be named "${name}", longer than a bridge name may be (15)`, 'give network.name');
  }
  return { name, config, at: f?.present ? f : root };
}

function parseGateway(f: Field | undefined): LabSpec['gateway'] {
  if (!f?.present) return { port: DEFAULT_GATEWAY_PORT };
  const g = f.map(['port', 'host'], 'gateway section');
  const port = g.get('port')?.int(1, 65535) ?? DEFAULT_GATEWAY_PORT;
  const hostField = g.get('host');
  const host = hostField?.string();
  if (host !== undefined && !/^[A-Za-z0-9.:_-]{1,253}$/.test(host)) hostField!.fail('expected a host name or address');
  return host ? { port, host } : { port };
}

function parseSettings(
  f: Field | undefined,
  base: MemberSettings,
  fields: Partial<Record<keyof MemberSettings, Field>>,
  what: string,
  extra: readonly string[] = [],
): MemberSettings {
  const out: MemberSettings = { ...base, profiles: [...base.profiles], config: { ...base.config } };
  if (!f?.present) return out;
  const m = f.map([...SETTINGS, ...extra], what);
  const image = m.get('image');
  if (image) {
    out.image = image.string();
    if (!out.image.endsWith('.yaml') && !out.image.includes(':')) image.check(() => validateAlias(out.image));
    fields.image = image;
  }
  const profiles = m.get('profiles');
  if (profiles) {
    out.profiles = profiles.seqOrOne('profiles').map((p) => p.check(() => validateProfileName(p.string())));
    const dup = out.profiles.find((p, i) => out.profiles.indexOf(p) !== i);
    if (dup) profiles.fail(`profile "${dup}" is listed twice`);
    fields.profiles = profiles;
  }
  const count = m.get('count');
  if (count) {
    out.count = count.int(1, MAX_COUNT);
    fields.count = count;
  }
  const naming = m.get('naming');
  if (naming) {
    out.naming = naming.string();
    const unknown = [...out.naming.matchAll(/\{([^}]*)\}/g)].map((x) => x[1]).find((x) => !['lab', 'member', 'n'].includes(x));
    if (unknown !== undefined) naming.fail(`unknown placeholder {${unknown}}`, 'use {lab}, {member} and {n}');
    fields.naming = naming;
  }
  const config = m.get('config');
  if (config?.present) {
    for (const [k, v] of config.entries('config')) {
      if (k === 'user.lab' || k.startsWith('user.lab.')) v.fail(`"${k}" is set by tslxc to mark the lab's containers`);
      out.config[k] = v.text();
    }
    fields.config = config;
  }
  return out;
}

function parseVolumes(f: Field | undefined, lab: string): LabVolume[] {
  if (!f?.present) return [];
  const out: LabVolume[] = [];
  for (const item of f.seq('volumes')) {
    const m = item.map(['name', 'path', 'scope', 'pool', 'readonly'], 'volume');
    const nameF = m.get('name') ?? item.fail('"name" is required');
    const name = nameF.check(() => validateDeviceName(validateVolumeName(nameF.string())));
    if (out.some((v) => v.name === name)) nameF.fail(`volume "${name}" is declared twice`);
    const pathF = m.get('path') ?? item.fail('"path" is required', 'where the volume appears in the containers, e.g. /srv/data');
    const p = pathF.string();
    if (!p.startsWith('/') || p.split('/').includes('..') || p === '/') pathF.fail('expected an absolute path inside the container, not "/" and without ".."');
    const norm = path.posix.normalize(p).replace(/(.)\/+$/, '$1');
    if (out.some((v) => v.path === norm)) pathF.fail(`two volumes are mounted at ${norm}`);
    const scopeF = m.get('scope');
    const scope = scopeF ? scopeF.string() : 'shared';
    if (scope !== 'shared' && scope !== 'member') scopeF!.fail(`expected "shared" (one volume for the whole lab) or "member" (one per member), got "${scope}"`);
    const poolF = m.get('pool');
    const pool = poolF ? poolF.check(() => validatePoolName(poolF.string())) : 'default';
    out.push({ name, path: norm, scope: scope as LabVolume['scope'], pool, readonly: m.get('readonly')?.bool() ?? false, at: item });
  }
  void lab;
  return out;
}

function parseMembers(f: Field, defaults: MemberSettings, file: string, lab: string): LabMember[] {
  const out: LabMember[] = [];
  for (const item of f.seq('members')) {
    const fields: LabMember['fields'] = {};
    const settings = parseSettings(item, defaults, fields, 'member', ['name', 'keys', 'key_files']);
    const m = item.map([...SETTINGS, 'name', 'keys', 'key_files'], 'member');
    const nameF = m.get('name') ?? item.fail('"name" is required');
    const name = nameF.check(
      () => validateInstanceName(validateGatewayUserName(nameF.string())),
      'member names are SSH login names and parts of container names: lowercase letters, digits and "-"',
    );
    if (out.some((o) => o.name === name)) nameF.fail(`member "${name}" is declared twice`);
    const keys: PublicKey[] = [];
    const keysF = m.get('keys');
    if (keysF?.present) for (const k of keysF.seqOrOne('keys')) keys.push(parsePublicKey(k, k.string()));
    const filesF = m.get('key_files');
    if (filesF?.present) {
      for (const kf of filesF.seqOrOne('key_files')) {
        const rel = kf.string();
        const abs = path.resolve(path.dirname(path.resolve(file)), rel);
        let text = '';
        try {
          text = fs.readFileSync(abs, 'utf8');
        } catch (err) {
          kf.fail(`cannot read ${abs}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
        }
        const lines = text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'));
        if (!lines.length) kf.fail(`${abs} holds no public key`);
        for (const l of lines) keys.push(parsePublicKey(kf, l, abs));
      }
    }
    const dupKey = keys.find((k, i) => keys.findIndex((o) => o.fingerprint === k.fingerprint) !== i);
    if (dupKey) (keysF ?? filesF ?? item).fail(`key ${dupKey.fingerprint} is given twice for member "${name}"`);
    const naming = settings.naming || (settings.count > 1 ? '{member}-{n}' : '{member}');
    const containers: LabContainer[] = [];
    for (let n = 1; n <= settings.count; n++) {
      containers.push({ member: name, n, name: naming.replaceAll('{lab}', lab).replaceAll('{member}', name).replaceAll('{n}', String(n)) });
    }
    out.push({ ...settings, naming, name, keys, containers, at: item, fields });
  }
  if (!out.length) f.fail('a lab needs at least one member');
  // A key that logs in as two members would let one reach the other's containers.
  const owner = new Map<string, string>();
  for (const m of out) {
    for (const k of m.keys) {
      const o = owner.get(k.fingerprint);
      if (o && o !== m.name)
        m.at.fail(
          `key ${k.fingerprint} is given to members "${o}" and "${m.name}"`,
          "each member needs their own key, or one could reach the other's containers",
        );
      owner.set(k.fingerprint, m.name);
    }
  }
  return out;
}

/** An OpenSSH public key line, checked with ssh2's parser; a private key is refused outright. */
export function parsePublicKey(f: Field, line: string, fromFile?: string): PublicKey {
  const where = fromFile ? ` (in ${fromFile})` : '';
  const trimmed = line.trim();
  if (/PRIVATE KEY/.test(trimmed)) f.fail(`this is a private key${where}`, 'give the public key (the .pub file), and keep the private key secret');
  const parsed = ssh2.utils.parseKey(trimmed);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || !key)
    f.fail(`not an OpenSSH public key${where}: ${key instanceof Error ? key.message : 'unreadable'}`, 'expected a line like "ssh-ed25519 AAAA... comment"');
  if (key.isPrivateKey()) f.fail(`this is a private key${where}`, 'give the public key (the .pub file)');
  const blob = key.getPublicSSH();
  const fingerprint = `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { line: trimmed, type: key.type, comment: key.comment || trimmed.split(/\s+/).slice(2).join(' '), fingerprint };
}
