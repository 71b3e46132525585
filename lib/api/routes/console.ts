import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { RawData, WebSocket } from 'ws';
import { ApiError, sync, type ApiRequest, type ApiResult, type Route, type RunningOperation } from '../types.js';
import { controlLine } from './exec.js';
import { instanceUrl, requireInstance, withContainerPaths } from './instances.js';
import { body } from './rest.js';

/**
 * /1.0/instances/NAME/console, LXD's `console` extension: GET is the console's log (what `tslxc
 * console --show-log` prints), DELETE empties it, and POST attaches to the console itself over a
 * websocket operation ("0" both ways, "control" for the client's messages), relayed to the
 * monitor's console socket as `tslxc console` is. The monitor takes one client at a time; the
 * client detaches (ctrl+a q in `lxc console`) by closing its control websocket. The window size
 * (the POST's width and height, then the control's window-resize messages) goes to the monitor's
 * console.ctl, which sets the console pty's.
 */

/** Output queued on the websocket beyond this pauses the console socket: a slow client loses nothing, as with `tslxc console`. */
const HIGH_WATER = 1 << 20;
/** What the monitor sends a second client before it hangs up (native/monitor.c console_accept). */
const BUSY = 'console busy\n';

async function consoleFiles(req: ApiRequest, name: string): Promise<{ dir: string; socket: string; control: string; logs: string[] }> {
  const { containerRunDir, RUN_FILES } = await import('../../state/paths.js');
  const dir = containerRunDir(req.ctx.paths, name);
  return {
    dir,
    socket: path.join(dir, RUN_FILES.consoleSocket),
    control: path.join(dir, RUN_FILES.consoleControl),
    logs: [RUN_FILES.consoleLogOld, RUN_FILES.consoleLog].map((f) => path.join(dir, f)),
  };
}

async function consoleLog(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const { consoleInstance } = await import('../../instance/exec.js');
  const text = String(await consoleInstance(req.ctx, name, { showLog: true }));
  return { type: 'raw', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from(text) };
}

/** LXD's DELETE: the log emptied (the monitor appends to it, so it is truncated, not removed). */
async function clearLog(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const [old, current] = (await consoleFiles(req, name)).logs;
  fs.rmSync(old, { force: true });
  try {
    fs.truncateSync(current, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return sync({});
}

function dimension(b: Record<string, unknown>, key: string): void {
  const v = b[key];
  if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 10000))
    throw new ApiError(400, `"${key}" must be a number of characters`);
}

async function attach(req: ApiRequest): Promise<ApiResult> {
  const name = await requireInstance(req);
  const b = await body(req);
  const type = b.type ?? 'console';
  if (type !== 'console')
    throw new ApiError(400, `Console type "${String(type).slice(0, 20)}" is not supported: tslxc runs containers, which have a text console only`);
  dimension(b, 'width');
  dimension(b, 'height');
  const { liveness } = await import('../../state/runtime.js');
  if (!liveness(req.ctx.paths, name).monitorAlive) throw new ApiError(400, 'Instance is not running');
  const files = await consoleFiles(req, name);
  const size = b.width && b.height ? `w ${String(b.height)} ${String(b.width)}\n` : undefined;
  const op = req.operations.start({
    class: 'websocket',
    description: 'Showing console',
    resources: { instances: [instanceUrl(name)] },
    sockets: ['0', 'control'],
    required: ['0'],
    run: (running) => relay(running, files, name, size),
  });
  return { type: 'async', operation: op };
}

/**
 * The monitor's console.ctl for this attach: "w ROWS COLS" lines, the first one (the POST's size)
 * sent once it connects. A monitor started before it had one has none: sizes are dropped then.
 */
function sizeControl(file: string, first?: string): { send(line: string): void; close(): void } {
  const conn = net.connect(file);
  conn.on('error', () => conn.destroy());
  if (first) conn.write(first);
  return {
    send: (line) => {
      if (!conn.destroyed) conn.write(line);
    },
    close: () => conn.destroy(),
  };
}

/** Until the client detaches (its control or data websocket closes), the console ends, or the operation is cancelled. */
async function relay(op: RunningOperation, files: { socket: string; control: string }, name: string, size?: string): Promise<void> {
  const conn = net.connect(files.socket);
  await new Promise<void>((resolve, reject) => {
    conn.once('connect', resolve);
    conn.once('error', () => reject(new ApiError(400, `Cannot attach to the console of "${name}": it is not running`)));
  });
  const sizes = sizeControl(files.control, size);
  const ws = op.sockets.get('0')!;
  let first = true;
  let busy = false;
  await new Promise<void>((resolve) => {
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      op.signal.removeEventListener('abort', end);
      resolve();
    };
    conn.on('data', (chunk: Buffer) => {
      // The monitor's answer to a second client is its whole conversation.
      if (first && chunk.toString('latin1') === BUSY) busy = true;
      first = false;
      if (busy || ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (conn.isPaused() && ws.bufferedAmount < HIGH_WATER) conn.resume();
      });
      if (ws.bufferedAmount >= HIGH_WATER) conn.pause();
    });
    conn.on('close', end);
    conn.on('error', end);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (!isBinary && buf.length === 0) return end();
      if (buf.length && !conn.write(buf)) {
        ws.pause();
        conn.once('drain', () => ws.resume());
      }
    });
    ws.on('close', end);
    ws.on('error', end);
    const watchControl = (control: WebSocket): void => {
      control.on('message', (data: RawData) => {
        const line = controlLine(String(data));
        if (line?.startsWith('w ')) sizes.send(line);
      });
      control.on('close', end);
      control.on('error', end);
      control.resume();
    };
    const control = op.sockets.get('control');
    if (control) watchControl(control);
    op.onSocket((n, s) => (n === 'control' ? watchControl(s) : s.resume()));
    op.signal.addEventListener('abort', end);
    ws.resume();
  });
  conn.destroy();
  sizes.close();
  for (const s of op.sockets.values()) if (s.readyState === s.OPEN || s.readyState === s.CONNECTING) s.close(1000);
  if (busy) throw new ApiError(409, `The console of "${name}" is in use by another client`);
}

export const routes: Route[] = withContainerPaths([
  { method: 'GET', path: '/1.0/instances/{name}/console', handler: consoleLog },
  { method: 'DELETE', path: '/1.0/instances/{name}/console', handler: clearLog },
  { method: 'POST', path: '/1.0/instances/{name}/console', handler: attach },
]);

export const extensions: string[] = ['console'];
