import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TslxcError, isErrno } from '../errors.js';
import { mkdirp, readTextIfExists, writeFileAtomic } from '../util/fs.js';

/**
 * The client's own configuration, as lxc keeps ~/.config/lxc: the API servers (tslxc or LXD) this
 * user added, each server's pinned certificate (servercerts/NAME.crt), the client certificate
 * (client.crt, client.key) and the default remote. It lives in the user's directory (TSLXC_CONF,
 * else ~/.config/tslxc) because a client without a server on the host needs no root and no state.
 * The default remote is a file of its own (default-remote, absent for "local") so that the native
 * CLI can tell with one access() that a bare name may not be a local container.
 */

export interface ServerRemote {
  /** https://HOST:PORT */
  addr: string;
  protocol: 'lxd';
  auth_type: 'tls';
}

export interface ClientConfig {
  remotes: Record<string, ServerRemote>;
}

export const LOCAL = 'local';
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function clientDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSLXC_CONF) return path.resolve(env.TSLXC_CONF);
  return path.join(env.HOME || os.homedir(), '.config', 'tslxc');
}

const configFile = (dir: string) => path.join(dir, 'remotes.json');
const defaultFile = (dir: string) => path.join(dir, 'default-remote');
export const serverCertFile = (dir: string, name: string) => path.join(dir, 'servercerts', `${name}.crt`);

export function loadClientConfig(dir = clientDir()): ClientConfig {
  const text = readTextIfExists(configFile(dir));
  if (text === undefined) return { remotes: {} };
  try {
    const doc = JSON.parse(text) as Partial<ClientConfig>;
    return { remotes: doc.remotes ?? {} };
  } catch (err) {
    throw new TslxcError(`Cannot read ${configFile(dir)}`, (err as Error).message, 'fix or remove the file');
  }
}

export function saveClientConfig(cfg: ClientConfig, dir = clientDir()): void {
  mkdirp(dir, 0o700);
  writeFileAtomic(configFile(dir), `${JSON.stringify(cfg, null, 2)}\n`, 0o600);
  // What a Tab offers for a container argument besides this host's names: "NAME:" of each API
  // server, one a line, read by the native completion (native/clicomplete.c prints the lines that
  // start with the word) and by node's, so that neither parses this config.
  const words = Object.keys(cfg.remotes)
    .sort()
    .map((n) => `${n}:\n`)
    .join('');
  writeFileAtomic(completionRemotesFile(dir), words, 0o644);
}

export const completionRemotesFile = (dir: string) => path.join(dir, 'completion-remotes');
/** The instance names (and states) of remote NAME as a list last saw them, for completion. */
export const completionCacheFile = (dir: string, name: string) => path.join(dir, 'cache', `${name}.instances`);
export const sessionFile = (dir: string, name: string) => path.join(dir, 'sessions', `${name}.json`);

/** What the client keeps about one remote besides its entry: gone with it, and on a rename (both are refilled by use). */
export function forgetRemoteFiles(dir: string, name: string): void {
  for (const file of [completionCacheFile(dir, name), sessionFile(dir, name)]) fs.rmSync(file, { force: true });
}

/** The remote a name without "REMOTE:" means: "local", or the one `remote switch` chose. */
export function defaultRemote(dir = clientDir()): string {
  let name: string;
  try {
    name = fs.readFileSync(defaultFile(dir), 'utf8').trim();
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EACCES')) return LOCAL;
    throw err;
  }
  return name || LOCAL;
}

export function setDefaultRemote(name: string, dir = clientDir()): void {
  if (name === LOCAL) {
    fs.rmSync(defaultFile(dir), { force: true });
    return;
  }
  mkdirp(dir, 0o700);
  writeFileAtomic(defaultFile(dir), `${name}\n`, 0o600);
}

export function validateRemoteName(name: string): string {
  if (!NAME.test(name) || name === LOCAL)
    throw new TslxcError(`Invalid remote name "${name.slice(0, 70)}"`, 'use lowercase letters, digits and "-" ("local" is this host)', undefined, {
      kind: 'invalid',
    });
  return name;
}

export function readServerCert(name: string, dir = clientDir()): string {
  const pem = readTextIfExists(serverCertFile(dir, name));
  if (pem === undefined)
    throw new TslxcError(
      `Remote "${name}" has no pinned certificate`,
      serverCertFile(dir, name),
      `add it again: "tslxc remote remove ${name}", then "tslxc remote add"`,
    );
  return pem;
}

export function writeServerCert(name: string, pem: string, dir = clientDir()): void {
  mkdirp(path.join(dir, 'servercerts'), 0o700);
  writeFileAtomic(serverCertFile(dir, name), pem, 0o644);
}

/**
 * Where a "[REMOTE:]NAME" argument points: `remote` is an API server of this client's config, or
 * undefined for this host. A name without "REMOTE:" means the default remote (`remote switch`);
 * "local:NAME" is always this host. A "REMOTE:" that is no API server is left whole: it may be an
 * image on a simplestreams remote, which the image code resolves.
 */
export function splitRemote(ref: string, dir = clientDir()): { remote?: string; rest: string } {
  const i = ref.indexOf(':');
  if (i < 0) {
    const def = defaultRemote(dir);
    return def === LOCAL ? { rest: ref } : { remote: def, rest: ref };
  }
  const remote = ref.slice(0, i);
  if (remote === LOCAL) return { rest: ref.slice(i + 1) };
  if (!loadClientConfig(dir).remotes[remote]) return { rest: ref };
  return { remote, rest: ref.slice(i + 1) };
}
