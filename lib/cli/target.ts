import { TslxcError } from '../errors.js';
import { splitRemote } from '../client/config.js';

/**
 * Where a "[REMOTE:]NAME" argument of a container verb points. A container name never holds ':',
 * so "r:c1" is container c1 on remote r, "local:c1" is c1 here, and a bare "c1" is on the default
 * remote (`remote switch`). For a bare name on a host without a default remote this costs one
 * failed open() of the client's default-remote file.
 */
export interface Target {
  /** the API server of the client config; undefined: this host */
  remote?: string;
  name: string;
}

export function target(ref: string): Target {
  const r = splitRemote(ref);
  // An unknown "x:" would otherwise reach the name check as "x:c1" and be called an invalid name.
  if (r.rest === ref && ref.includes(':'))
    throw new TslxcError(
      `Remote "${ref.slice(0, ref.indexOf(':')).slice(0, 64)}" not found`,
      undefined,
      'see "tslxc remote list"; add it with "tslxc remote add"',
    );
  return { remote: r.remote, name: r.rest };
}

/** The remote several names point to: all on one (or all here), as one command talks to one server. */
export function targets(refs: string[]): { remote?: string; names: string[] } {
  const all = refs.map(target);
  const remote = all[0]?.remote;
  if (all.some((t) => t.remote !== remote)) throw new TslxcError('Give containers of one remote at a time', refs.join(' '), 'run the command once per remote');
  return { remote, names: all.map((t) => t.name) };
}
