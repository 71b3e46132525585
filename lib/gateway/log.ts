import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../state/paths.js';
import { gatewayDir } from './users.js';

export const sessionsLogFile = (p: Paths) => path.join(gatewayDir(p), 'sessions.log');

/** One line of STATE/gateway/sessions.log, written when a session ends. */
export interface SessionRecord {
  user: string;
  login: string;
  /** "ADDRESS:PORT" of the client. */
  source: string;
  container: string;
  kind: 'shell' | 'exec' | 'sftp';
  command?: string;
  pty: boolean;
  start: string;
  end: string;
  /** The exit status sent to the client; null when the client left before the command ended. */
  exit: number | null;
  /** Why it ended other than by the command's own exit (container stopped, client gone). */
  note?: string;
}

/**
 * Appends JSON lines. Each record is one write(2) to an O_APPEND file, so concurrent sessions (and
 * two gateways on one state dir) never interleave within a line.
 */
export class SessionLog {
  private fd: number;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.fd = fs.openSync(file, 'a', 0o600);
  }

  write(rec: SessionRecord): void {
    fs.writeSync(this.fd, `${JSON.stringify(rec)}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Every record of a sessions log (tests, `tslxc gateway` tooling). Damaged lines are skipped. */
export function readSessionLog(file: string): SessionRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: SessionRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as SessionRecord);
    } catch {
      /* a line cut short by a crash */
    }
  }
  return out;
}
