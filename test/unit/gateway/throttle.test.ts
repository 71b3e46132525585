import test from 'ava';
import { Throttle } from '../../../lib/gateway/throttle.js';

const opts = { delayAfter: 2, banAfter: 5, banMs: 60_000, windowMs: 600_000, baseDelayMs: 500, maxDelayMs: 2_000 };

test('failures are free at first, then delayed (doubling, capped), then the address is refused', (t) => {
  let now = 1_000_000;
  const th = new Throttle(opts, () => now);
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 0, banned: false });
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 0, banned: false });
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 500, banned: false });
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 1000, banned: false });
  t.is(th.bannedFor('10.0.0.1'), 0);
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 0, banned: true });
  t.is(th.bannedFor('10.0.0.1'), 60_000);
  t.is(th.bannedFor('10.0.0.2'), 0, 'another address is not affected');
  now += 30_000;
  t.is(th.bannedFor('10.0.0.1'), 30_000);
  th.success('10.0.0.1'); // a success does not lift a ban
  t.true(th.bannedFor('10.0.0.1') > 0);
  now += 30_001;
  t.is(th.bannedFor('10.0.0.1'), 0);
  t.deepEqual(th.failure('10.0.0.1'), { delayMs: 0, banned: false }, 'the count starts again after a ban');
});

test('a success clears the record; old failures are forgotten', (t) => {
  let now = 0;
  const th = new Throttle({ ...opts, windowMs: 1000 }, () => now);
  th.failure('a');
  th.failure('a');
  th.success('a');
  t.deepEqual(th.failure('a'), { delayMs: 0, banned: false });
  th.failure('a');
  now += 2000;
  t.deepEqual(th.failure('a'), { delayMs: 0, banned: false }, 'failures older than the window do not count');
  now += 2000;
  th.prune();
  t.is(th.bannedFor('a'), 0);
});
