import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { bumpGeneration, GenerationSnapshot, generationFile, readGeneration, scope } from '../../../lib/state/generations.js';
import { addressClaims, configWritten } from '../../../lib/state/config.js';
import { startDependencies } from '../../../lib/instance/plan.js';
import type { Paths } from '../../../lib/state/paths.js';

function tempPaths(): Paths & { root: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-gen-'));
  return { root, stateDir: path.join(root, 'state'), runDir: path.join(root, 'run'), cacheDir: path.join(root, 'cache'), cgroupPrefix: 'x' };
}

test('every bump gives a token never seen before; a scope never written reads ""', (t) => {
  const p = tempPaths();
  try {
    t.is(readGeneration(p, scope.profile('default')), '');
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(bumpGeneration(p, scope.profile('default')));
    t.is(seen.size, 50);
    t.true(seen.has(readGeneration(p, scope.profile('default'))));
    t.is(readGeneration(p, scope.profile('other')), '', 'scopes are apart');
    t.throws(() => generationFile(p, 'profile/../../etc'));
    t.throws(() => generationFile(p, '/etc/passwd'));
  } finally {
    fs.rmSync(p.root, { recursive: true, force: true });
  }
});

test('a snapshot settles only if nothing but the start itself wrote its own scope', (t) => {
  const p = tempPaths();
  try {
    const own = scope.container('c1');
    const snap = new GenerationSnapshot(p);
    snap.read(scope.container('c1'), scope.profile('default'));
    // The start's own write of its config (the status): taken as the new generation.
    const token = bumpGeneration(p, scope.container('c1'));
    const settled = snap.settle(own);
    t.deepEqual(settled, {
      generations: [
        [scope.container('c1'), token],
        [scope.profile('default'), ''],
      ],
    });

    // The addresses, because the start's own config claimed one: taken too; because another's: not.
    const nic = new GenerationSnapshot(p);
    nic.read(scope.container('c1'), scope.addresses());
    configWritten(p, 'c1', {}, { config: { 'volatile.eth0.ipv4.address': '10.0.0.5' } });
    t.true('generations' in nic.settle(own));
    const nic2 = new GenerationSnapshot(p);
    nic2.read(scope.container('c1'), scope.addresses());
    configWritten(p, 'c2', {}, { config: { 'volatile.eth0.ipv4.address': '10.0.0.6' } });
    t.deepEqual(nic2.settle(own), { changed: scope.addresses() });

    // A profile written while the start ran (by anyone, this process included): no plan.
    const other = new GenerationSnapshot(p);
    other.read(scope.container('c1'), scope.profile('default'));
    bumpGeneration(p, scope.profile('default'));
    t.deepEqual(other.settle(own), { changed: scope.profile('default') });

    // The container's config written by another process (a token this one never wrote).
    const third = new GenerationSnapshot(p);
    third.read(scope.container('c1'));
    fs.writeFileSync(generationFile(p, scope.container('c1')), '1.2.3');
    t.deepEqual(third.settle(own), { changed: scope.container('c1') });
  } finally {
    fs.rmSync(p.root, { recursive: true, force: true });
  }
});

test('a config write bumps the addresses only when the addresses it claims change', (t) => {
  const p = tempPaths();
  try {
    const a = { config: { 'volatile.eth0.ipv4.address': '10.0.0.5', 'limits.memory': '1GiB' }, devices: {} };
    t.deepEqual(addressClaims(a), ['10.0.0.5']);
    t.deepEqual(addressClaims({ devices: { eth1: { type: 'nic', 'ipv4.address': '10.0.0.9' } } }), ['10.0.0.9']);
    configWritten(p, 'c1', undefined, a);
    const addresses = readGeneration(p, scope.addresses());
    const container = readGeneration(p, scope.container('c1'));
    t.not(addresses, '');
    configWritten(p, 'c1', a, { ...a, config: { ...a.config, 'limits.memory': '2GiB' } });
    t.is(readGeneration(p, scope.addresses()), addresses, 'a limit changed: the addresses did not');
    t.not(readGeneration(p, scope.container('c1')), container);
    configWritten(p, 'c1', a, { ...a, config: { 'volatile.eth0.ipv4.address': '10.0.0.6' } });
    t.not(readGeneration(p, scope.addresses()), addresses);
  } finally {
    fs.rmSync(p.root, { recursive: true, force: true });
  }
});

test("a start declares its root pool and image, its nics' networks and the addresses, its volumes", (t) => {
  const p = tempPaths();
  try {
    const dir = path.join(p.stateDir, 'containers', 'c1');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'storage.yaml'), `pool: fast\ndriver: dir\nimage: ${'a'.repeat(64)}\n`);
    const deps = startDependencies(p, 'c1', {
      devices: {
        root: { type: 'disk', path: '/', pool: 'fast' },
        eth0: { type: 'nic', network: 'br1' },
        data: { type: 'disk', path: '/data', pool: 'slow', source: 'vol1' },
        host: { type: 'disk', path: '/mnt', source: '/srv' },
      },
    });
    t.deepEqual(
      [...new Set(deps)].sort(),
      [scope.addresses(), scope.image('a'.repeat(64)), scope.network('br1'), scope.pool('fast'), scope.pool('slow'), scope.volume('slow', 'vol1')].sort(),
    );
  } finally {
    fs.rmSync(p.root, { recursive: true, force: true });
  }
});

test("nothing patches node's modules any more", (t) => {
  const src = fs.readFileSync(new URL('../../../lib/instance/plan.js', import.meta.url), 'utf8');
  t.notRegex(src, /fs\.readFileSync\s*=|Object\.assign\(f, saved\)|installReadHooks/);
});
