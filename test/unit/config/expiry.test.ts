import test from 'ava';
import { expiryAfter } from '../../../lib/config/expiry.js';
import { validateKey } from '../../../lib/config/schema.js';

const from = new Date('2026-01-31T10:00:00Z');

test("LXD's expiry expressions: each unit, and several at once", (t) => {
  t.is(expiryAfter(from, ''), undefined, 'empty: never');
  t.is(expiryAfter(from, '30M')!.toISOString(), '2026-01-31T10:30:00.000Z');
  t.is(expiryAfter(from, '12H')!.toISOString(), '2026-01-31T22:00:00.000Z');
  t.is(expiryAfter(from, '3d')!.toISOString(), '2026-02-03T10:00:00.000Z');
  t.is(expiryAfter(from, '2w')!.toISOString(), '2026-02-14T10:00:00.000Z');
  // Go's AddDate normalizes Jan 31 + 1 month (Feb 31) into March, as this does.
  t.is(expiryAfter(from, '1m')!.toISOString(), '2026-03-03T10:00:00.000Z');
  t.is(expiryAfter(from, '1y')!.toISOString(), '2027-01-31T10:00:00.000Z');
  t.is(expiryAfter(from, '1w 12H')!.toISOString(), '2026-02-07T22:00:00.000Z');
});

test('a bad expression is one clear error; snapshots.expiry is checked with it', (t) => {
  for (const bad of ['soon', '3', 'd', '3D', '1d 2d', '-1d', '1.5d', '99999999d'])
    t.throws(() => expiryAfter(from, bad), { message: /^Invalid snapshots\.expiry/ }, bad);
  t.notThrows(() => validateKey('snapshots.expiry', '3d'));
  t.throws(() => validateKey('snapshots.expiry', 'soon'), { message: /snapshots\.expiry/ });
});
