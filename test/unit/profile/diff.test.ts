import test from 'ava';
import { diffDevices, isEmptyDiff, sameDevice } from '../../../lib/profile/expand.js';

/** The one diff every live device change goes through (config, profiles, lab up). */
test('unchanged devices give an empty diff, whatever the key order', (t) => {
  const a = { eth0: { type: 'nic', network: 'n1', name: 'eth0' }, d: { type: 'disk', source: '/s', path: '/p' } };
  const b = { d: { path: '/p', type: 'disk', source: '/s' }, eth0: { name: 'eth0', network: 'n1', type: 'nic' } };
  t.true(sameDevice(a.d, b.d));
  t.true(isEmptyDiff(diffDevices(a, b)));
});

test('added, removed and changed devices are told apart, in name order', (t) => {
  const before = {
    b: { type: 'disk', source: '/s', path: '/b' },
    a: { type: 'disk', source: '/s', path: '/a' },
    keep: { type: 'nic', network: 'n' },
    ro: { type: 'disk', source: '/s', path: '/r' },
  };
  const after = {
    keep: { type: 'nic', network: 'n' },
    ro: { type: 'disk', source: '/s', path: '/r', readonly: 'true' },
    z: { type: 'proxy', listen: 'tcp:0.0.0.0:1', connect: 'tcp:127.0.0.1:1' },
    c: { type: 'disk', source: '/s', path: '/c' },
  };
  const d = diffDevices(before, after);
  t.deepEqual(
    d.removed.map(([n]) => n),
    ['a', 'b'],
  );
  t.deepEqual(
    d.added.map(([n]) => n),
    ['c', 'z'],
  );
  t.deepEqual(d.changed, [['ro', { before: before.ro, after: after.ro }]]);
  t.false(isEmptyDiff(d));
});

test('a key removed from a device is a change, not a no-op', (t) => {
  const d = diffDevices({ x: { type: 'disk', source: '/s', path: '/x', readonly: 'true' } }, { x: { type: 'disk', source: '/s', path: '/x' } });
  t.is(d.changed.length, 1);
  t.deepEqual([d.added, d.removed], [[], []]);
});

test('a device of type none in a profile layer shows as a removal of the inherited one', async (t) => {
  const { expandInstance } = await import('../../../lib/profile/expand.js');
  const profiles: Record<
    string,
    { name: string; description: string; config: Record<string, string>; devices: Record<string, Record<string, string>>; builtin: boolean }
  > = {
    base: { name: 'base', description: '', config: {}, devices: { data: { type: 'disk', source: '/srv', path: '/srv' } }, builtin: false },
  };
  const paths = { stateDir: '/nonexistent', runDir: '/nonexistent', cacheDir: '/nonexistent', cgroupPrefix: 'x' };
  const load = (n: string) => profiles[n];
  const before = expandInstance(paths, { profiles: ['base'], config: {}, devices: {} }, load).devices;
  const after = expandInstance(paths, { profiles: ['base'], config: {}, devices: { data: { type: 'none' } } }, load).devices;
  const d = diffDevices(before, after);
  t.deepEqual(
    d.removed.map(([n]) => n),
    ['data'],
  );
  t.is(d.added.length + d.changed.length, 0);
});
