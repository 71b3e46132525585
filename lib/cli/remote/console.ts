import { TslxcError } from '../../errors.js';
import { instancePath, withRemote } from './connect.js';

/** `console --show-log REMOTE:N`: GET /1.0/instances/N/console, the console's log as the server keeps it. */
export async function remoteConsoleLog(remote: string, name: string): Promise<string> {
  return withRemote(remote, async (s) => {
    const r = await s.raw('GET', `${instancePath(name)}/console`);
    if (r.status >= 400) {
      let msg = `HTTP ${r.status}`;
      try {
        msg = (JSON.parse(r.body.toString('utf8')) as { error?: string }).error || msg;
      } catch {
        // not an envelope
      }
      throw s.failure(r.status, msg);
    }
    return r.body.toString('utf8');
  });
}

export function noRemoteConsole(remote: string): never {
  throw new TslxcError(`Attaching to a console of remote "${remote}" is not supported yet`, undefined, 'use --show-log, or "tslxc shell"');
}
