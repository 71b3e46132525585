import fs from 'node:fs';
import path from 'node:path';
import { logsDir, type Paths } from '../state/paths.js';
import type { Identity } from './types.js';

/**
 * The audit log (TSLXC_DIR/logs/api-audit.log): one line per change asked through the API, answered
 * or refused: time, who (the certificate's name, "unix", or "untrusted" with its fingerprint),
 * method, path, HTTP status. Appended with O_APPEND, so lines from one server never interleave.
 */
export const auditFile = (p: Paths) => path.join(logsDir(p), 'api-audit.log');

export class AuditLog {
  private ready = false;

  constructor(private readonly paths: Paths) {}

  write(identity: Identity, method: string, target: string, status: number): void {
    const who = identity.trusted || !identity.fingerprint ? identity.name : `untrusted:${identity.fingerprint.slice(0, 12)}`;
    const line = `${new Date().toISOString()} ${who} ${method} ${target} ${status}\n`;
    try {
      if (!this.ready) {
        fs.mkdirSync(logsDir(this.paths), { recursive: true, mode: 0o700 });
        this.ready = true;
      }
      fs.appendFileSync(auditFile(this.paths), line, { mode: 0o600 });
    } catch (err) {
      process.stderr.write(`${new Date().toISOString()} audit log: ${(err as Error).message}\n`);
    }
  }
}
