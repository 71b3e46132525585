import test from 'ava';
import { matches, parseFilter, valueOf } from '../../../lib/api/filter.js';
import { ApiError } from '../../../lib/api/types.js';

const inst = {
  name: 'web1',
  status: 'Running',
  status_code: 103,
  ephemeral: false,
  profiles: ['default', 'web'],
  config: { 'image.os': 'Debian', 'limits.memory': '256MiB' },
  expanded_devices: { root: { path: '/', pool: 'default', type: 'disk' } },
};

test('filter: clauses, not, and/or left to right, quotes (LXD shared/filter)', (t) => {
  t.deepEqual(parseFilter('name eq web1'), [{ prevLogical: 'and', not: false, field: 'name', operator: 'eq', value: 'web1' }]);
  const q = parseFilter(`not description eq "two words" or name eq 'a b c'`);
  t.is(q.length, 2);
  t.is(q[0].value, 'two words');
  t.true(q[0].not);
  t.is(q[1].prevLogical, 'or');
  t.is(q[1].value, 'a b c');
  t.deepEqual(parseFilter('  '), []);
  for (const bad of ['name', 'name eq', 'not', 'name eq a xor b eq c', 'name eq a and', 'name eq "open'])
    t.throws(() => parseFilter(bad), { instanceOf: ApiError }, bad);
});

test('filter: values by type, as LXD matches them', (t) => {
  const m = (f: string) => matches(inst, parseFilter(f));
  t.true(m('name eq web1'));
  t.true(m('name eq WEB1'), 'strings compare case-insensitively');
  t.true(m('name eq web.*'), 'a string is a regular expression over the whole value');
  t.false(m('name eq web'));
  t.true(m('status eq running and status_code eq 103'));
  t.true(m('status_code gt 102 and status_code le 103'));
  t.false(m('status eq Stopped'));
  t.true(m('status eq Stopped or name eq web1'));
  t.true(m('not status eq Stopped'));
  t.true(m('status ne Stopped'));
  t.true(m('ephemeral eq false'));
  t.true(m('config.image.os eq debian'), 'a map of strings takes the dotted rest as its key');
  t.false(m('config.user.missing eq x'), 'a missing config key is ""');
  t.true(m('expanded_devices.root.pool eq default'));
  t.true(m('profiles eq ["default","web"]'));
  t.false(m('profiles eq ["default"]'));
  t.throws(() => m('nosuchfield eq x'), { instanceOf: ApiError });
  t.throws(() => m('name gt x'), { instanceOf: ApiError });
  t.throws(() => m('status_code eq abc'), { instanceOf: ApiError });
  t.throws(() => m('name like x'), { instanceOf: ApiError });
  t.is(valueOf(inst, 'config.limits.memory'), '256MiB');
});
