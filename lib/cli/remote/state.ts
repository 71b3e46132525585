import { TslxcError } from '../../errors.js';
import { instancePath, withRemote } from './connect.js';

/** start, stop, restart on a remote: PUT /1.0/instances/N/state, one name after the other as locally. */
export async function remoteState(
  remote: string,
  names: string[],
  action: 'start' | 'stop' | 'restart',
  opts: { force?: boolean; timeout?: number } = {},
): Promise<void> {
  await withRemote(remote, async (s) => {
    for (const name of names) {
      await s.run('PUT', `${instancePath(name)}/state`, { action, timeout: opts.timeout ?? -1, force: !!opts.force, stateful: false });
    }
  });
}

/** `delete REMOTE:N`: a running container needs --force (stopped first), as locally. */
export async function remoteDelete(remote: string, names: string[], force: boolean): Promise<void> {
  await withRemote(remote, async (s) => {
    for (const name of names) {
      const inst = await s.get<{ status_code: number; status: string }>(instancePath(name));
      if (inst.status_code !== 102) {
        if (!force) throw new TslxcError(`Container "${name}" is ${inst.status.toLowerCase()}`, undefined, 'stop it first, or use --force');
        await s.run('PUT', `${instancePath(name)}/state`, { action: 'stop', timeout: -1, force: true, stateful: false });
      }
      await s.run('DELETE', instancePath(name));
    }
  });
}
