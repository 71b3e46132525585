import test from 'ava';
import { compareShapes, goldenMetadata, loadGolden, shapeOf } from '../../helpers/shape.js';

test('shapeOf: types, times, arrays by their first element, maps by key name', (t) => {
  const s = shapeOf({
    name: 'c1',
    created_at: '2026-12-07T14:00:00.123456789Z',
    pid: 12,
    ok: true,
    gone: null,
    used_by: ['/1.0/instances/c1', 3],
    config: { 'limits.cpu': '1', 'user.x': 'y' },
    devices: { eth0: { type: 'nic', name: 'eth0' }, root: { type: 'disk', path: '/' } },
  });
  t.deepEqual(s, {
    config: { '{map}': 'string' },
    created_at: 'time',
    devices: { '{map}': { '{map}': 'string' } },
    gone: 'null',
    name: 'string',
    ok: 'boolean',
    pid: 'number',
    used_by: ['string'],
  });
});

test('compareShapes: missing, extra and wrong-typed keys, one line each with their path', (t) => {
  const golden = shapeOf({ metadata: [{ name: 'a', state: { pid: 1 }, config: { a: 'b' } }] });
  const ours = shapeOf({ metadata: [{ state: { pid: '1' }, config: { x: 2 }, initPid: 3 }] });
  t.deepEqual(compareShapes(ours, golden), [
    'wrong type at metadata[].config.*: number, LXD has string',
    'missing key metadata[].name (LXD: string)',
    'wrong type at metadata[].state.pid: string, LXD has number',
    'extra key metadata[].initPid (number)',
  ]);
  t.deepEqual(compareShapes(ours, golden, { allowExtra: true, ignore: ['metadata[].name', 'metadata[].state.pid', 'metadata[].config.*'] }), []);
  // Map keys are data: other names are fine; an empty array or map matches any.
  t.deepEqual(compareShapes(shapeOf({ config: { other: 'v' }, used_by: [] }), shapeOf({ config: { a: 'b' }, used_by: ['x'] })), []);
});

test('the recorded goldens load and have the envelope', (t) => {
  const g = loadGolden('profiles-recursion1');
  t.is(g.http_status, 200);
  t.deepEqual(Object.keys(goldenMetadata('profile')).sort(), ['config', 'description', 'devices', 'name', 'used_by']);
  t.truthy(loadGolden('event-lifecycle').shape);
});
