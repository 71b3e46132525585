import type { ApiRequest, ApiResult, Route } from '../types.js';
import { requireInstance } from './instances.js';

/**
 * GET /1.0/instances/NAME/console: the console's log, as `tslxc console --show-log` prints it and
 * LXD answers `lxc console --show-log` (raw text). Attaching (POST, a websocket) is not served.
 */
async function consoleLog(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { consoleInstance } = await import('../../instance/exec.js');
  const log = await consoleInstance(req.ctx, name, { showLog: true });
  return { type: 'raw', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(String(log)) };
}

export const routes: Route[] = ['instances', 'containers'].map((kind): Route => ({ method: 'GET', path: `/1.0/${kind}/{name}/console`, handler: consoleLog }));

/** `console` (attaching) is not advertised: only the log is served. */
export const extensions: string[] = [];
