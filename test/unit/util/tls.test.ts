import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { TslxcError } from '../../../lib/errors.js';
import { needTls, NeedsTlsError } from '../../../lib/util/tls.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');
const CERTS = '/etc/ssl/certs/ca-certificates.crt';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-tls-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// bin/tslxc with a stand-in `node` first in PATH that prints what it was given.
test('bin/tslxc starts every command but image (not import), remote, registry and lab without the extra CA certificates, and keeps them aside', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\necho "${NODE_EXTRA_CA_CERTS-unset}|${TSLXC_NODE_EXTRA_CA_CERTS-unset}|$2"\n', { mode: 0o755 });
  const run = (verb: string, extra: Record<string, string | undefined> = {}, args = [verb, 'x']) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: CERTS, ...extra };
    for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
    return spawnSync(path.join(repo, 'bin', 'tslxc'), args, { encoding: 'utf8', env }).stdout.trim();
  };
  for (const verb of ['create', 'init', 'launch', 'copy', 'snapshot', 'list', 'stop']) t.is(run(verb), `unset|${CERTS}|${verb}`);
  for (const verb of ['image', 'remote', 'registry', 'lab', '--debug'])
    t.is(run(verb), `${CERTS}|unset|${verb}`, 'commands that connect by themselves keep them');
  // (TSLXC_HELPER set: straight to node, not through the native front's import pass)
  t.is(run('image', { TSLXC_HELPER: '/nonexistent' }, ['image', 'import', 'x']), `unset|${CERTS}|image`, 'an import reads local files only');
  t.is(run('image', { TSLXC_HELPER: '/nonexistent' }, ['image', 'list']), `${CERTS}|unset|image`);
  t.is(run('copy', { TSLXC_NODE_EXTRA_CA_CERTS: undefined, NODE_EXTRA_CA_CERTS: '' }), 'unset|unset|copy', 'an empty value is dropped, not kept aside');
  t.is(run('launch', { NODE_EXTRA_CA_CERTS: undefined }), 'unset|unset|launch', 'nothing is made up where none were set');
});

test('needTls throws NeedsTlsError, and only where the certificates were kept aside', (t) => {
  const saved = process.env.TSLXC_NODE_EXTRA_CA_CERTS;
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  t.teardown(() => {
    for (const [k, v] of [
      ['TSLXC_NODE_EXTRA_CA_CERTS', saved],
      ['NODE_EXTRA_CA_CERTS', extra],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.TSLXC_NODE_EXTRA_CA_CERTS = CERTS;
  delete process.env.NODE_EXTRA_CA_CERTS;
  const err = t.throws(() => needTls(), { instanceOf: NeedsTlsError });
  t.true(err instanceof TslxcError, 'a TslxcError: a caller that does not handle it prints one line');
  process.env.NODE_EXTRA_CA_CERTS = CERTS;
  t.notThrows(() => needTls(), 'this process has them');
  delete process.env.NODE_EXTRA_CA_CERTS;
  process.env.TSLXC_NODE_EXTRA_CA_CERTS = '';
  t.notThrows(() => needTls(), 'none were kept aside');
});

test('runAgainWithCertificates runs the command again with the certificates and passes its exit code through', (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'cmd.mjs');
  const lib = path.join(repo, 'dist', 'lib');
  // What the CLI's entry does (lib/cli/fast.ts, lib/cli/index.ts), around a command that exits 7.
  fs.writeFileSync(
    script,
    `import { needTls, NeedsTlsError } from ${JSON.stringify(path.join(lib, 'util', 'tls.js'))};
import { runAgainWithCertificates } from ${JSON.stringify(path.join(lib, 'cli', 'rerun.js'))};
console.log('before', process.env.NODE_EXTRA_CA_CERTS ?? 'unset');
try {
  needTls();
  console.log('after', process.env.NODE_EXTRA_CA_CERTS ?? 'unset', process.env.TSLXC_NODE_EXTRA_CA_CERTS ?? 'unset', process.argv.slice(2).join(' '));
  process.exitCode = 7;
} catch (err) {
  if (!(err instanceof NeedsTlsError)) throw err;
  process.exitCode = runAgainWithCertificates();
}
`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, TSLXC_NODE_EXTRA_CA_CERTS: CERTS };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, [script, 'a', 'b c'], { encoding: 'utf8', env });
  t.is(r.status, 7);
  // The first run stops at needTls; the second, with the certificates, goes on.
  t.deepEqual(r.stdout.trim().split('\n'), ['before unset', `before ${CERTS}`, `after ${CERTS} unset a b c`]);

  const plain = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...env, TSLXC_NODE_EXTRA_CA_CERTS: '' } });
  t.deepEqual(plain.stdout.trim().split('\n'), ['before unset', 'after unset'], 'without saved certificates it does nothing');
  t.is(plain.status, 7);
});

// The real entry, both of its paths: a create from a remote runs once without the certificates,
// stops at needTls before making anything, and runs again with them; the exit code and the one
// line of error are the second run's. A stand-in `node` in PATH adds a preload that notes each run.
test('bin/tslxc: a create that has to download runs again with the certificates, on the fast and the full CLI', (t) => {
  const dir = tmpDir(t);
  const log = path.join(dir, 'runs.log');
  fs.writeFileSync(
    path.join(dir, 'note.mjs'),
    `import fs from 'node:fs';\nfs.appendFileSync(${JSON.stringify(log)}, (process.env.NODE_EXTRA_CA_CERTS ?? 'unset') + '\\n');\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'node'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(path.join(dir, 'note.mjs'))} "$@"\n`,
    { mode: 0o755 },
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dir}:${process.env.PATH}`,
    NODE_EXTRA_CA_CERTS: CERTS,
    TSLXC_DIR: path.join(dir, 'state'),
    TSLXC_RUN_DIR: path.join(dir, 'run'),
    TSLXC_CGROUP_PREFIX: `tslxc-unit-tls-${path.basename(dir).slice(-6).toLowerCase()}`,
  };
  delete env.TSLXC_NODE_EXTRA_CA_CERTS;
  const tslxc = (...args: string[]) => spawnSync(path.join(repo, 'bin', 'tslxc'), args, { encoding: 'utf8', env });
  // Nothing listens on the discard port of loopback: the second run fails to connect, as it should.
  t.is(tslxc('remote', 'add', 'dead', 'http://127.0.0.1:9').status, 0);
  for (const extra of [[], ['--debug']]) {
    fs.rmSync(log, { force: true });
    const r = tslxc('create', 'dead:bb', 'c1', ...extra);
    t.is(r.status, 1, r.stderr);
    t.deepEqual(fs.readFileSync(log, 'utf8').trim().split('\n'), ['unset', CERTS], `${extra.join(' ')}: once without, once with`);
    t.is(r.stderr.split('\n').filter((l) => l.startsWith('Error: ')).length, 1, r.stderr);
    t.regex(r.stderr, /Cannot reach remote "dead"/);
    t.false(fs.existsSync(path.join(dir, 'state', 'containers', 'c1')), 'nothing was made');
  }
});
