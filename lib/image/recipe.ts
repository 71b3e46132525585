import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { TslxcError } from '../errors.js';
import { validateAlias } from '../util/names.js';
import type { DebootstrapSource } from './sources/debootstrap.js';

/**
 * Recipes (templates/*.yaml) build images. The format is data, checked key by key so a typo is an
 * error rather than a silently ignored line:
 *   name, description, os, release, releases (aliases → release), source, init, stop_signal,
 *   environment, files [{path, content, mode}], commands [shell lines run in the new root].
 * `{{release}}` in description is replaced by the release chosen.
 */
export type RecipeSource =
  | { type: 'busybox' }
  | ({ type: 'debootstrap' } & DebootstrapSource)
  /** `from: IMAGE`: the parent image (an alias, a fingerprint or a built-in recipe's name) */
  | { type: 'image'; from: string };

export interface RecipeFile {
  path: string;
  content: string;
  mode: number;
}

export interface Recipe {
  name: string;
  description: string;
  os: string;
  release: string;
  source: RecipeSource;
  init: string[];
  stopSignal: string;
  environment: Record<string, string>;
  files: RecipeFile[];
  commands: string[];
  /** The file it came from, for messages. */
  file: string;
  /** Keys the recipe gave itself; a `from:` recipe inherits the others from its parent. */
  given: string[];
  /**
   * `remote: images:ubuntu/{{release}}`: where the recipe's bare name resolves (`launch ubuntu`),
   * as LXD resolves it through its default remote; the recipe itself is built by `image build`
   * or when a --mirror is given.
   */
  remote?: string;
}

export interface RecipeOptions {
  release?: string;
  mirror?: string;
  /** `image build`: the recipe itself, never the remote its bare name resolves through */
  build?: boolean;
}

const TOP_KEYS = ['name', 'description', 'os', 'release', 'releases', 'source', 'from', 'init', 'stop_signal', 'environment', 'files', 'commands', 'remote'];
const SOURCE_KEYS: Record<string, string[]> = {
  busybox: ['type'],
  image: ['type', 'from'],
  debootstrap: ['type', 'variant', 'mirror', 'packages', 'suite', 'script', 'keyring'],
};

export const builtinTemplatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../templates');

/** Find the recipe for an image name: a path to a YAML file, or the name of a built-in one. */
export function findRecipe(nameOrPath: string): string | undefined {
  if (nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml')) {
    return fs.existsSync(nameOrPath) ? path.resolve(nameOrPath) : undefined;
  }
  validateAlias(nameOrPath);
  const file = path.join(builtinTemplatesDir, `${nameOrPath}.yaml`);
  return fs.existsSync(file) ? file : undefined;
}

export function listBuiltinRecipes(): string[] {
  return fs
    .readdirSync(builtinTemplatesDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

export function loadRecipe(file: string, opts: RecipeOptions = {}): Recipe {
  let doc: unknown;
  try {
    doc = yaml.load(fs.readFileSync(file, 'utf8'), { schema: yaml.CORE_SCHEMA, filename: file });
  } catch (err) {
    throw new TslxcError(`Invalid recipe ${file}`, (err as Error).message.split('\n')[0]);
  }
  return parseRecipe(doc, file, opts);
}

export function parseRecipe(doc: unknown, file: string, opts: RecipeOptions = {}): Recipe {
  const bad = (why: string) => new TslxcError(`Invalid recipe ${file}`, why);
  if (!isObject(doc)) throw bad('the file must hold a YAML mapping');
  checkKeys(doc, TOP_KEYS, '', bad);
  const name = str(doc.name, 'name', bad);
  validateAlias(name);
  if (doc.from !== undefined && doc.source !== undefined) throw bad('give either "from" (a parent image) or "source", not both');
  const src = doc.from !== undefined ? { type: 'image', from: str(doc.from, 'from', bad) } : doc.source;
  if (!isObject(src)) throw bad('"source" must be a mapping with a "type" (or give "from: IMAGE")');
  const type = str(src.type, 'source.type', bad);
  if (!SOURCE_KEYS[type]) throw bad(`source.type "${type}" is unknown (known: ${Object.keys(SOURCE_KEYS).join(', ')})`);
  checkKeys(src, SOURCE_KEYS[type], 'source.', bad);

  const releases = doc.releases === undefined ? {} : strMap(doc.releases, 'releases', bad);
  let release = opts.release ?? (doc.release === undefined ? 'default' : str(doc.release, 'release', bad));
  release = releases[release] ?? release;
  if (!/^[a-z0-9][a-z0-9.+_-]*$/i.test(release)) throw new TslxcError(`Invalid release "${release}"`, 'use a suite name like bookworm or a version like 12');

  let source: RecipeSource;
  if (type === 'debootstrap') {
    const mirror = opts.mirror ?? str(src.mirror, 'source.mirror', bad);
    if (!/^(https?|file):\/\/[^\s]+$/.test(mirror)) throw new TslxcError(`Invalid mirror "${mirror}"`, 'give an http://, https:// or file:// URL');
    const packages = src.packages === undefined ? [] : strList(src.packages, 'source.packages', bad);
    for (const p of packages) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) throw bad(`source.packages: "${p}" is not a Debian package name`);
    const script = src.script === undefined ? undefined : str(src.script, 'source.script', bad);
    if (script !== undefined && !/^[a-z][a-z0-9.-]*$/.test(script)) throw bad('source.script must be the name of a script in /usr/share/debootstrap/scripts');
    const keyring = src.keyring === undefined ? undefined : str(src.keyring, 'source.keyring', bad);
    if (keyring !== undefined && (!keyring.startsWith('/') || keyring.split('/').includes('..'))) throw bad('source.keyring must be an absolute path');
    source = {
      type,
      variant: src.variant === undefined ? 'minbase' : str(src.variant, 'source.variant', bad),
      mirror,
      packages,
      suite: release,
      ...(script ? { script } : {}),
      ...(keyring ? { keyring } : {}),
    };
  } else if (type === 'image') {
    const from = str(src.from, 'source.from', bad);
    if (!/^[0-9a-f]{1,64}$/.test(from)) validateAlias(from);
    source = { type: 'image', from };
  } else {
    source = { type: 'busybox' };
  }

  const init = doc.init === undefined ? ['/sbin/init'] : typeof doc.init === 'string' ? [doc.init] : strList(doc.init, 'init', bad);
  const files =
    doc.files === undefined
      ? []
      : listOf(doc.files, 'files', bad).map((f, i) => {
          if (!isObject(f)) throw bad(`files[${i}] must be a mapping`);
          checkKeys(f, ['path', 'content', 'mode'], `files[${i}].`, bad);
          const p = str(f.path, `files[${i}].path`, bad);
          if (!p.startsWith('/') || p.split('/').includes('..')) throw bad(`files[${i}].path must be absolute, without ".."`);
          const mode = f.mode === undefined ? 0o644 : parseInt(String(f.mode), 8);
          if (!(mode >= 0 && mode <= 0o7777)) throw bad(`files[${i}].mode must be an octal mode like "0644"`);
          return { path: p, content: typeof f.content === 'string' ? f.content : str(f.content ?? '', `files[${i}].content`, bad), mode };
        });
  return {
    name,
    description: (doc.description === undefined ? name : str(doc.description, 'description', bad)).replace(/\{\{\s*release\s*\}\}/g, release),
    os: doc.os === undefined ? name : str(doc.os, 'os', bad),
    release,
    source,
    init,
    stopSignal: doc.stop_signal === undefined ? 'SIGPWR' : str(doc.stop_signal, 'stop_signal', bad),
    environment: doc.environment === undefined ? {} : strMap(doc.environment, 'environment', bad),
    files,
    commands: doc.commands === undefined ? [] : strList(doc.commands, 'commands', bad),
    file,
    given: Object.keys(doc),
    ...(doc.remote !== undefined ? { remote: remoteRef(str(doc.remote, 'remote', bad).replace(/\{\{\s*release\s*\}\}/g, release), bad) } : {}),
  };
}

type Bad = (why: string) => Error;
function remoteRef(ref: string, bad: Bad): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}:[a-z0-9][a-z0-9._/-]{0,127}$/i.test(ref)) throw bad(`"remote" must be REMOTE:ALIAS (got "${ref.slice(0, 60)}")`);
  return ref;
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function checkKeys(o: Record<string, unknown>, allowed: string[], prefix: string, bad: Bad): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`unknown key "${prefix}${k}" (allowed: ${allowed.join(', ')})`);
}
function str(v: unknown, key: string, bad: Bad): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw bad(`"${key}" must be a string`);
}
function listOf(v: unknown, key: string, bad: Bad): unknown[] {
  if (!Array.isArray(v)) throw bad(`"${key}" must be a list`);
  return v;
}
function strList(v: unknown, key: string, bad: Bad): string[] {
  return listOf(v, key, bad).map((x, i) => str(x, `${key}[${i}]`, bad));
}
function strMap(v: unknown, key: string, bad: Bad): Record<string, string> {
  if (!isObject(v)) throw bad(`"${key}" must be a mapping`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, str(x, `${key}.${k}`, bad)]));
}
