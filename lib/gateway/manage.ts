import { TslxcError } from '../errors.js';
import { listNames } from '../state/config.js';
import type { Context } from '../state/context.js';
import { validateInstanceName } from '../util/names.js';
import { parsePublicKeyLine } from './auth.js';
import { keyFingerprint } from './hostkey.js';
import { getGatewayUser, listGatewayUsers, putGatewayUser, validateGatewayUserName, type GatewayUser } from './users.js';

/** `gateway user add`: every key must parse as a public key, every container must exist. */
export async function addGatewayUser(
  ctx: Context,
  name: string,
  keys: Array<{ line: string; from: string }>,
  containers: string[],
  opts: { replace?: boolean } = {},
): Promise<GatewayUser> {
  validateGatewayUserName(name);
  if (keys.length === 0)
    throw new TslxcError(
      `No key for gateway user "${name}"`,
      'the gateway accepts public keys only',
      'give --key FILE.pub or --key-line "ssh-ed25519 AAAA..."',
    );
  for (const k of keys) {
    if (!parsePublicKeyLine(k.line)) {
      throw new TslxcError(
        `Invalid public key in ${k.from}`,
        `"${k.line.slice(0, 40)}${k.line.length > 40 ? '…' : ''}" is not an OpenSSH public key line`,
        'give the .pub file, not the private key',
      );
    }
  }
  if (containers.length === 0) throw new TslxcError(`No container for gateway user "${name}"`, undefined, 'give --container NAME');
  const existing = new Set(listNames(ctx.paths));
  for (const c of containers) {
    validateInstanceName(c);
    if (!existing.has(c)) throw new TslxcError(`Container "${c}" not found`, undefined, `create it first, or check the name with "tslxc list"`);
  }
  if (!opts.replace && getGatewayUser(ctx.paths, name))
    throw new TslxcError(`Gateway user "${name}" already exists`, undefined, 'use --replace to replace it, or "tslxc gateway user remove" first');
  const user: GatewayUser = { name, keys: [...new Set(keys.map((k) => k.line))], containers: [...new Set(containers)] };
  await putGatewayUser(ctx.paths, user);
  return user;
}

export interface GatewayUserView extends GatewayUser {
  fingerprints: string[];
}

export function describeGatewayUsers(ctx: Context): GatewayUserView[] {
  return listGatewayUsers(ctx.paths).map((u) => ({
    ...u,
    fingerprints: u.keys.map((k) => {
      const parsed = parsePublicKeyLine(k);
      return parsed ? keyFingerprint(parsed.getPublicSSH()) : 'invalid';
    }),
  }));
}
