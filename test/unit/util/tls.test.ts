import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');
const CERTS = '/etc/ssl/certs/ca-certificates.crt';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-tls-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// bin/tslxc with a stand-in `node` first in PATH that prints what it was given.
test('bin/tslxc starts every command but image, remote, registry and lab without the extra CA certificates, and keeps them aside', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\necho "${NODE_EXTRA_CA_CERTS-unset}|${TSLXC_NODE_EXTRA_CA_CERTS-unset}|$2"\n', { mode: 0o755 });
  const run = (verb: string, extra: Record<string, string | undefined> = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: CERTS, ...extra };
    for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
    return spawnSync(path.join(repo, 'bin', 'tslxc'), [verb, 'x'], { encoding: 'utf8', env }).stdout.trim();
  };
  for (const verb of ['create', 'init', 'launch', 'copy', 'snapshot', 'list', 'stop']) t.is(run(verb), `unset|${CERTS}|${verb}`);
  for (const verb of ['image', 'remote', 'registry', 'lab', '--debug']) t.is(run(verb), `${CERTS}|unset|${verb}`, 'commands that connect by themselves keep them');
  t.is(run('copy', { TSLXC_NODE_EXTRA_CA_CERTS: undefined, NODE_EXTRA_CA_CERTS: '' }), 'unset|unset|copy', 'an empty value is dropped, not kept aside');
  t.is(run('launch', { NODE_EXTRA_CA_CERTS: undefined }), 'unset|unset|launch', 'nothing is made up where none were set');
});

test('needTls runs the command again with the certificates and passes its exit code through', (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'cmd.mjs');
  const tls = path.join(repo, 'dist', 'lib', 'util', 'tls.js');
  fs.writeFileSync(script, `import { needTls } from ${JSON.stringify(tls)};\nconsole.log('before', process.env.NODE_EXTRA_CA_CERTS ?? 'unset');\nneedTls();\nconsole.log('after', process.env.NODE_EXTRA_CA_CERTS ?? 'unset', process.argv.slice(2).join(' '));\nprocess.exit(7);\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, TSLXC_NODE_EXTRA_CA_CERTS: CERTS };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, [script, 'a', 'b c'], { encoding: 'utf8', env });
  t.is(r.status, 7);
  // The first run stops at needTls; the second, with the certificates, goes on.
  t.deepEqual(r.stdout.trim().split('\n'), ['before unset', `before ${CERTS}`, `after ${CERTS} a b c`]);

  const plain = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...env, TSLXC_NODE_EXTRA_CA_CERTS: '' } });
  t.deepEqual(plain.stdout.trim().split('\n'), ['before unset', 'after unset'], 'without saved certificates it does nothing');
});
