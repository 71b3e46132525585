import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TslxcError } from '../../errors.js';

/**
 * `edit` commands: on a terminal, open $VISUAL/$EDITOR (else vi) on the text and return what was
 * saved; without a terminal, read the new text from stdin (as `lxc profile edit p < p.yaml`).
 */
export async function editText(initial: string, label: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-edit-'));
  try {
    const file = path.join(dir, `${label.replace(/[^a-z0-9._-]/gi, '_')}.yaml`);
    fs.writeFileSync(file, initial, { mode: 0o600 });
    const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'editor', file], { stdio: 'inherit' });
    if (r.status !== 0) throw new TslxcError(`The editor (${editor}) exited ${r.status ?? r.signal}`, 'nothing was changed');
    return fs.readFileSync(file, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
