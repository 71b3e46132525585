import fs from 'node:fs';
import { sync, type ApiRequest, type ApiResult, type Route } from '../types.js';
import { instanceUrl, requireInstance, withContainerPaths } from './instances.js';

/**
 * /1.0/instances/NAME/logs: the log files LXD keeps per instance; here the recorded output of exec
 * with `record-output` (lib/instance/logs.ts). The console's log is console.ts's.
 */

const logsLib = () => import('../../instance/logs.js');

async function listLogs(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { listLogs } = await logsLib();
  return sync(listLogs(req.ctx, name).map((f) => `${instanceUrl(name)}/logs/${f}`));
}

async function getLog(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { logPath } = await logsLib();
  const file = logPath(req.ctx, name, req.params.file);
  return { type: 'raw', headers: { 'Content-Type': 'application/octet-stream' }, body: fs.readFileSync(file) };
}

async function deleteLog(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  (await logsLib()).deleteLog(req.ctx, name, req.params.file);
  return sync({});
}

export const routes: Route[] = withContainerPaths([
  { method: 'GET', path: '/1.0/instances/{name}/logs', handler: listLogs },
  { method: 'GET', path: '/1.0/instances/{name}/logs/{file}', handler: getLog },
  { method: 'DELETE', path: '/1.0/instances/{name}/logs/{file}', handler: deleteLog },
]);

export const extensions: string[] = [];
