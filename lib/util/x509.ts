import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TslxcError } from '../errors.js';

/**
 * Makes DIR/NAME.crt and DIR/NAME.key: a self-signed certificate with an EC P-384 key, as LXD's
 * server and client certificates are. Both are made in a private temp dir (0700) and renamed in,
 * the key first, so the key is never readable by others and a NAME.crt present means its key is.
 */
export function makeSelfSigned(dir: string, name: string, opts: { subject: string; extensions: string[]; what: string }): void {
  const tmp = fs.mkdtempSync(path.join(dir, `.${name}-cert-`));
  const tmpKey = path.join(tmp, 'key');
  const tmpCert = path.join(tmp, 'crt');
  try {
    const r = spawnSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-nodes', '-days', '3650'],
        ...['-subj', opts.subject],
        ...opts.extensions.flatMap((e) => ['-addext', e]),
        ...['-keyout', tmpKey, '-out', tmpCert],
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0)
      throw new TslxcError(
        `Cannot make ${opts.what}`,
        r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || `openssl exited ${r.status}`,
        'install openssl ("apt-get install openssl")',
      );
    fs.chmodSync(tmpKey, 0o600);
    fs.renameSync(tmpKey, path.join(dir, `${name}.key`));
    fs.renameSync(tmpCert, path.join(dir, `${name}.crt`));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
