import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';
import { locksDir, type Paths } from '../state/paths.js';
import { withLock } from '../util/lock.js';
import { isInstanceName, validateInstanceName } from '../util/names.js';
import { readYamlIfExists, writeYamlAtomic } from '../util/yaml.js';

/**
 * Who may reach which containers through the SSH gateway. The gateway reads this on every login
 * (so `gateway user add` and `lab up` take effect without restarting it); `tslxc gateway user` and
 * labs write it. One file, `STATE/gateway/users.yaml`, written atomically under a lock.
 *
 * A user name is the SSH login name: `member1` for the user's only (or first) container, or
 * `member1+web1` to pick one of several. Keys are OpenSSH public key lines ("ssh-ed25519 AAAA...").
 */
export interface GatewayUser {
  name: string;
  /** OpenSSH public key lines allowed to log in as this user. */
  keys: string[];
  /** Containers this user may enter; the first is the default target. */
  containers: string[];
  /** The lab that owns this entry, when a lab file made it (lab down removes only its own). */
  lab?: string;
}

interface UsersFile {
  users: GatewayUser[];
}

/** A gateway user name: a DNS label, so it can never hold "+" (the container selector) or "/". */
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export function validateGatewayUserName(name: unknown): string {
  if (typeof name !== 'string' || !USER_NAME.test(name)) {
    throw new TslxcError(
      `Invalid gateway user name "${String(name).slice(0, 40)}"`,
      'names start with a letter or "_" and hold only a-z, 0-9, "_" and "-" (at most 32)',
      'pick a name like "member1"',
    );
  }
  return name;
}

export const gatewayDir = (p: Paths) => path.join(p.stateDir, 'gateway');
export const gatewayUsersFile = (p: Paths) => path.join(gatewayDir(p), 'users.yaml');

export function listGatewayUsers(p: Paths): GatewayUser[] {
  const file = readYamlIfExists<UsersFile>(gatewayUsersFile(p));
  return (file?.users ?? []).map(normalise);
}

export function getGatewayUser(p: Paths, name: string): GatewayUser | undefined {
  return listGatewayUsers(p).find((u) => u.name === name);
}

/** Adds or replaces a user (matched by name). */
export async function putGatewayUser(p: Paths, user: GatewayUser): Promise<void> {
  const entry = normalise(user);
  await update(p, (users) => [...users.filter((u) => u.name !== entry.name), entry]);
}

/** Removes a user; returns false when there was none of that name. */
export async function removeGatewayUser(p: Paths, name: string): Promise<boolean> {
  let found = false;
  await update(p, (users) => {
    found = users.some((u) => u.name === name);
    return users.filter((u) => u.name !== name);
  });
  return found;
}

/** Removes every user a lab made (lab down). */
export async function removeLabGatewayUsers(p: Paths, lab: string): Promise<string[]> {
  const removed: string[] = [];
  await update(p, (users) =>
    users.filter((u) => {
      if (u.lab !== lab) return true;
      removed.push(u.name);
      return false;
    }),
  );
  return removed;
}

async function update(p: Paths, change: (users: GatewayUser[]) => GatewayUser[]): Promise<void> {
  // The gateway's dir holds its host key too: private to root.
  fs.mkdirSync(gatewayDir(p), { recursive: true, mode: 0o700 });
  await withLock(locksDir(p), 'gateway-users', () => {
    const users = change(listGatewayUsers(p)).sort((a, b) => a.name.localeCompare(b.name));
    writeYamlAtomic(gatewayUsersFile(p), { users } satisfies UsersFile, 0o600);
  });
}

function normalise(u: GatewayUser): GatewayUser {
  const name = validateGatewayUserName(u.name);
  const keys = (u.keys ?? []).map((k) => String(k).trim()).filter(Boolean);
  const containers = (u.containers ?? []).map((c) => validateInstanceName(c));
  return u.lab ? { name, keys, containers, lab: String(u.lab) } : { name, keys, containers };
}

/** A login name split into the user and the container asked for ("member1+web1"). */
export interface LoginName {
  user: string;
  /** The container after "+", if one was named. */
  container?: string;
}

/** Parses an SSH login name; undefined when it cannot name any user (never a path, never "+x+y"). */
export function parseLoginName(login: string): LoginName | undefined {
  const plus = login.indexOf('+');
  const user = plus < 0 ? login : login.slice(0, plus);
  const container = plus < 0 ? undefined : login.slice(plus + 1);
  if (!USER_NAME.test(user)) return undefined;
  if (container !== undefined && !isInstanceName(container)) return undefined;
  return container === undefined ? { user } : { user, container };
}

/**
 * The container a login reaches: the one named after "+" if the user may enter it, else the
 * user's first; undefined when the user has none or may not enter the one named.
 */
export function loginTarget(user: GatewayUser, login: LoginName): string | undefined {
  if (login.container === undefined) return user.containers[0];
  return user.containers.includes(login.container) ? login.container : undefined;
}
