import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { diskBindSpec, disksFileText, validateDiskDevice } from '../../../lib/storage/disk.js';
import { checkRootSize, rootSize } from '../../../lib/storage/instance.js';
import { removeSshHostKeys } from '../../../lib/instance/copy.js';
import { validateVolumeName } from '../../../lib/storage/volume.js';
import type { PoolConfig } from '../../../lib/storage/pool.js';
import type { Paths } from '../../../lib/state/paths.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-storage-'));
const pool = (driver: PoolConfig['driver'], name = 'p'): PoolConfig => ({ name, driver, config: {}, created_at: '' });

test('volume disk devices: shape checked without paths, existence with them', (t) => {
  t.notThrows(() => validateDiskDevice('d', { type: 'disk', pool: 'p1', source: 'vol', path: '/srv' }));
  t.throws(() => validateDiskDevice('d', { type: 'disk', pool: 'P!', source: 'vol', path: '/srv' }), { message: /pool/ });
  t.throws(() => validateDiskDevice('d', { type: 'disk', pool: 'p1', source: '../x', path: '/srv' }), { message: /volume name/ });
  t.throws(() => validateDiskDevice('d', { type: 'disk', pool: 'p1', source: 'vol', path: '/srv', size: '1GiB' }), { message: /only to the root disk/ });
  const root = tmp();
  const paths: Paths = { stateDir: root, runDir: root, cacheDir: root, cgroupPrefix: 'x' };
  t.throws(() => validateDiskDevice('d', { type: 'disk', pool: 'p1', source: 'vol', path: '/srv' }, { paths }), { message: /Storage pool "p1" not found/ });
  fs.mkdirSync(path.join(root, 'storage-pools/p1/volumes/vol'), { recursive: true });
  fs.writeFileSync(path.join(root, 'storage-pools/p1.yaml'), 'name: p1\ndriver: dir\nconfig: {}\ncreated_at: x\n');
  t.throws(
    () => validateDiskDevice('d', { type: 'disk', pool: 'p1', source: 'vol', path: '/srv' }, { paths }),
    { message: /volume "p1\/vol" not found/ },
    'no record: not a volume (an orphan dir)',
  );
  fs.writeFileSync(path.join(root, 'storage-pools/p1/volumes/vol.yaml'), 'name: vol\npool: p1\ncreated_at: x\n');
  const text = disksFileText({ d: { type: 'disk', pool: 'p1', source: 'vol', path: '/srv/', readonly: 'true' }, root: { type: 'disk', path: '/' } }, paths);
  t.is(text, `${root}/storage-pools/p1/volumes/vol:/srv/:ro\n`);
  t.is(
    diskBindSpec('d', { type: 'disk', pool: 'p1', source: 'vol', path: '/srv' }, paths, { idmap: true }),
    `${root}/storage-pools/p1/volumes/vol:/srv:idmap`,
    'a volume is idmapped in an unprivileged container',
  );
  t.is(
    diskBindSpec('h', { type: 'disk', source: root, path: '/h', readonly: 'yes' }, paths, { idmap: true }),
    `${root}:/h:ro`,
    'a host path keeps its ids unless shift=true',
  );
  fs.rmSync(root, { recursive: true, force: true });
});

test('root disk size: parsed; refused with one line where the driver cannot enforce it', (t) => {
  const devices = { root: { type: 'disk', path: '/', pool: 'p', size: '2GiB' } };
  t.is(rootSize(devices), 2 * 1024 ** 3);
  t.is(rootSize({ root: { type: 'disk', path: '/', pool: 'p' } }), undefined);
  t.notThrows(() => checkRootSize('c1', pool('btrfs'), devices));
  for (const d of ['dir', 'overlay'] as const) {
    const err = t.throws(() => checkRootSize('c1', pool(d), devices));
    t.regex(err!.message, new RegExp(`^Cannot limit the root disk of "c1" \\(size=2GiB\\): its pool "p" uses the ${d} driver, which cannot enforce a size`));
  }
  t.throws(() => validateDiskDevice('root', { type: 'disk', path: '/', size: 'lots' }), { message: /size/ });
});

test('SSH host keys are removed from a copy without following a symlink out of the root', (t) => {
  const root = tmp();
  const outside = tmp();
  fs.mkdirSync(path.join(root, 'etc/ssh'), { recursive: true });
  for (const f of ['ssh_host_rsa_key', 'ssh_host_rsa_key.pub', 'sshd_config']) fs.writeFileSync(path.join(root, 'etc/ssh', f), 'x');
  removeSshHostKeys(root);
  t.deepEqual(fs.readdirSync(path.join(root, 'etc/ssh')), ['sshd_config']);
  // /etc/ssh a symlink to a host dir: left alone.
  fs.rmSync(path.join(root, 'etc/ssh'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'ssh_host_ed25519_key'), 'host');
  fs.symlinkSync(outside, path.join(root, 'etc/ssh'));
  removeSshHostKeys(root);
  t.true(fs.existsSync(path.join(outside, 'ssh_host_ed25519_key')));
  t.notThrows(() => removeSshHostKeys(path.join(root, 'nothing')));
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('volume names', (t) => {
  for (const ok of ['data', 'a', 'db-1', 'x.y_z']) t.is(validateVolumeName(ok), ok);
  for (const bad of ['', '.hidden', '-x', 'a/b', '..', 'a..b', 'x'.repeat(64), 'snap-']) t.throws(() => validateVolumeName(bad), undefined, bad);
});

test('withFrozen thaws whatever happens, and leaves no marker', async (t) => {
  const { withFrozen } = await import('../../../lib/instance/snapshot.js');
  const root = tmp();
  const paths: Paths = { stateDir: root, runDir: root, cacheDir: root, cgroupPrefix: 'x' };
  fs.mkdirSync(path.join(root, 'containers/c1'), { recursive: true });
  const calls: string[] = [];
  let failFreeze = false;
  const cg = {
    freeze: async () => {
      calls.push('freeze');
      if (failFreeze) throw new Error('no freezer');
    },
    thaw: async () => void calls.push('thaw'),
  };
  const { Context } = await import('../../../lib/state/context.js');
  const { useCgroups } = await import('../../../lib/cgroup/context.js');
  const ctx = new Context(paths);
  useCgroups(ctx, cg as never);
  const marker = path.join(root, 'containers/c1/snapshot-freeze.pid');
  await t.throwsAsync(
    withFrozen(ctx, 'c1', async () => {
      t.true(fs.existsSync(marker));
      throw new Error('copy failed');
    }),
    { message: 'copy failed' },
  );
  t.deepEqual(calls, ['freeze', 'thaw']);
  t.false(fs.existsSync(marker));
  const timing = { frozenMs: -1 };
  t.is(await withFrozen(ctx, 'c1', async () => 42, timing), 42);
  t.true(timing.frozenMs >= 0);
  calls.length = 0;
  failFreeze = true;
  await t.throwsAsync(
    withFrozen(ctx, 'c1', async () => 1),
    { message: 'no freezer' },
  );
  t.deepEqual(calls, ['freeze'], 'nothing to thaw when the freeze failed');
  t.false(fs.existsSync(marker));
  fs.rmSync(root, { recursive: true, force: true });
});
