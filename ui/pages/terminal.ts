import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import type { Operation } from '../api.js';

/**
 * A terminal in the page over LXD's interactive exec: stream "0" carries the pty both ways
 * (binary frames), "control" the window size, sent again whenever the element's size changes.
 */

export interface TerminalHandle {
  close(): void;
  closed: Promise<void>;
}

// A login shell: bash where the image has it, sh otherwise. A constant, never user input.
const SHELL = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'];

export async function openTerminal(box: HTMLElement, instanceUrl: string, start: (path: string, body: unknown) => Promise<Operation>): Promise<TerminalHandle> {
  box.replaceChildren();
  // Shown before xterm measures it: a hidden element has no size to fit.
  box.dataset.open = 'true';
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 2000, convertEol: false });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const op = await start(`${instanceUrl}/exec`, {
    command: SHELL,
    environment: { TERM: 'xterm-256color', HOME: '/root', USER: 'root', LANG: 'C.UTF-8' },
    'wait-for-websocket': true,
    interactive: true,
    width: term.cols,
    height: term.rows,
  });
  const fds = (op.metadata?.fds ?? {}) as Record<string, string>;
  const wsUrl = (secret: string) => `wss://${location.host}/1.0/operations/${encodeURIComponent(op.id)}/websocket?secret=${encodeURIComponent(secret)}`;
  const data = new WebSocket(wsUrl(fds['0']!));
  data.binaryType = 'arraybuffer';
  const control = fds.control ? new WebSocket(wsUrl(fds.control)) : undefined;
  const encoder = new TextEncoder();
  let done!: () => void;
  const closed = new Promise<void>((resolve) => (done = resolve));

  const resize = () => {
    fit.fit();
    if (control?.readyState === WebSocket.OPEN)
      control.send(JSON.stringify({ command: 'window-resize', args: { width: String(term.cols), height: String(term.rows) } }));
  };
  const observer = new ResizeObserver(() => resize());
  observer.observe(box);
  control?.addEventListener('open', resize);

  data.onmessage = (m) => {
    if (m.data instanceof ArrayBuffer) term.write(new Uint8Array(m.data));
    else term.write(String(m.data));
  };
  const input = term.onData((s) => {
    if (data.readyState === WebSocket.OPEN) data.send(encoder.encode(s));
  });
  const finish = () => {
    observer.disconnect();
    input.dispose();
    term.write('\r\n[session ended]\r\n');
    control?.close();
    done();
  };
  data.onclose = finish;
  data.onopen = () => term.focus();

  return {
    closed,
    close() {
      data.close();
      control?.close();
      observer.disconnect();
      term.dispose();
      box.replaceChildren();
      delete box.dataset.open;
    },
  };
}
