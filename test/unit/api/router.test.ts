import test from 'ava';
import { Router } from '../../../lib/api/router.js';
import { sync, type Route } from '../../../lib/api/types.js';

const route = (method: Route['method'], path: string): Route => ({ method, path, handler: async () => sync(path) });
const router = new Router([
  route('GET', '/1.0'),
  route('GET', '/1.0/instances'),
  route('POST', '/1.0/instances'),
  route('GET', '/1.0/instances/{name}'),
  route('GET', '/1.0/instances/{name}/snapshots/{snapshot}'),
]);

test('literal paths, and a trailing slash is the same path', (t) => {
  for (const p of ['/1.0', '/1.0/']) {
    const m = router.match('GET', p);
    t.true('route' in m && m.route.path === '/1.0', p);
  }
});

test('{params} are matched per segment and decoded', (t) => {
  const m = router.match('GET', '/1.0/instances/c%2D1/snapshots/snap%200');
  t.true('route' in m);
  if ('route' in m) t.deepEqual(m.params, { name: 'c-1', snapshot: 'snap 0' });
});

test('an empty param does not match; unknown paths are 404', (t) => {
  t.like(router.match('GET', '/1.0/instances//snapshots/x'), { status: 404 });
  t.like(router.match('GET', '/2.0'), { status: 404 });
  t.like(router.match('GET', '/1.0/instances/%zz'), { status: 404 });
});

test('a known path with another method is 405 with the allowed ones', (t) => {
  t.deepEqual(router.match('DELETE', '/1.0/instances'), { status: 405, allowed: ['GET', 'POST'] });
});
