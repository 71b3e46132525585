import test from 'ava';
import {
  formatCpuList,
  formatSize,
  normalizeCpuList,
  parseBool,
  parseCpuAllowance,
  parseCpuList,
  parseDuration,
  parseDurationUs,
  parseInteger,
  parseSize,
} from '../../../lib/util/units.js';

test('sizes: decimal units are 1000-based, binary and one-letter units 1024-based', (t) => {
  t.is(parseSize('512MiB'), 512 * 1024 * 1024);
  t.is(parseSize('2GB'), 2_000_000_000);
  t.is(parseSize('1G'), 1024 ** 3);
  t.is(parseSize('1g'), 1024 ** 3);
  t.is(parseSize('100kB'), 100_000);
  t.is(parseSize('100KB'), 100_000);
  t.is(parseSize('4KiB'), 4096);
  t.is(parseSize('1048576'), 1048576);
  t.is(parseSize('10B'), 10);
  t.is(parseSize(' 1.5KiB '), 1536);
  t.is(parseSize('1 TiB'), 1024 ** 4);
  t.is(parseSize(0), 0);
  t.is(parseSize(4096), 4096);
});

test('sizes: a percentage needs the total from the caller', (t) => {
  t.is(parseSize('50%', { total: 1000 }), 500);
  t.is(parseSize('12.5%', { total: 1000 }), 125);
  t.throws(() => parseSize('50%'), { message: /"50%".*percentage is not allowed here/ });
  t.throws(() => parseSize('150%', { total: 1000 }), { message: /between 0% and 100%/ });
});

test('sizes: bad values name the value and what is expected', (t) => {
  t.throws(() => parseSize('12XB'), { message: /^Invalid value "12XB": unknown unit "XB" \(use B, kB, MB, GB/ });
  t.throws(() => parseSize('lots', { key: 'limits.memory' }), { message: /^Invalid value "lots" for limits.memory: expected a byte count like 512MiB/ });
  t.throws(() => parseSize('-1G'), { message: /expected a byte count/ });
  t.throws(() => parseSize(''), { message: /expected a byte count/ });
  t.throws(() => parseSize('99999999EiB'), { message: /too large/ });
  t.throws(() => parseSize(1.5), { message: /whole number of bytes/ });
});

test('formatSize', (t) => {
  t.is(formatSize(512), '512B');
  t.is(formatSize(1536), '1.5KiB');
  t.is(formatSize(1024 ** 3), '1GiB');
});

test('CPU lists are parsed, normalized and validated', (t) => {
  t.deepEqual(parseCpuList('0-1,3'), [0, 1, 3]);
  t.deepEqual(parseCpuList('3, 0-1,1'), [0, 1, 3]);
  t.is(normalizeCpuList('5,0-2,3,4'), '0-5');
  t.is(normalizeCpuList('7'), '7');
  t.is(formatCpuList([0, 2, 3, 4, 6]), '0,2-4,6');
  t.is(formatCpuList([]), '');
  t.throws(() => parseCpuList('3-1'), { message: /"3-1": the range 3-1 runs backwards/ });
  t.throws(() => parseCpuList('a'), { message: /"a" is not a CPU number or range/ });
  t.throws(() => parseCpuList('1,,2'), { message: /not a CPU number or range/ });
  t.throws(() => parseCpuList(''), { message: /expected CPU numbers and ranges like 0-1,3/ });
  t.throws(() => parseCpuList('0-3', { key: 'limits.cpu', available: [0, 1] }), {
    message: /^Invalid value "0-3" for limits.cpu: CPU 2-3 does not exist here \(available CPUs: 0-1\)/,
  });
});

test('durations', (t) => {
  t.is(parseDuration('30s'), 30_000);
  t.is(parseDuration('5m'), 300_000);
  t.is(parseDuration('1h'), 3_600_000);
  t.is(parseDuration('100ms'), 100);
  t.is(parseDuration('1.5s'), 1500);
  t.is(parseDuration('0'), 0);
  t.is(parseDurationUs('25ms'), 25_000);
  t.is(parseDurationUs('10us'), 10);
  t.throws(() => parseDuration('30'), { message: /"30": expected a duration like 100ms, 30s, 5m or 1h/ });
  t.throws(() => parseDuration('3 weeks'), { message: /unknown unit "weeks"/ });
  t.throws(() => parseDuration('-1s'), { message: /expected a duration/ });
});

test('CPU allowance: a percentage is a share, a time per period a quota', (t) => {
  t.deepEqual(parseCpuAllowance('50%'), { kind: 'percent', percent: 50, quotaUs: 50_000, periodUs: 100_000 });
  t.deepEqual(parseCpuAllowance('200%'), { kind: 'percent', percent: 200, quotaUs: 200_000, periodUs: 100_000 });
  t.deepEqual(parseCpuAllowance('25ms/100ms'), { kind: 'quota', quotaUs: 25_000, periodUs: 100_000 });
  t.deepEqual(parseCpuAllowance('1s/500ms'), { kind: 'quota', quotaUs: 1_000_000, periodUs: 500_000 });
  t.throws(() => parseCpuAllowance('0%'), { message: /more than 0%/ });
  t.throws(() => parseCpuAllowance('25ms'), { message: /expected a percentage like 50% or a time per period like 25ms\/100ms/ });
  t.throws(() => parseCpuAllowance('25ms/2s'), { message: /period must be between 1ms and 1s/ });
  t.throws(() => parseCpuAllowance('10us/100ms'), { message: /at least 1ms/ });
  t.throws(() => parseCpuAllowance('25/100', { key: 'limits.cpu.allowance' }), {
    message: /^Invalid value "25" for limits.cpu.allowance: expected a duration/,
  });
});

test('booleans', (t) => {
  for (const v of ['true', 'TRUE', '1', 'yes', 'on', ' yes ']) t.true(parseBool(v), v);
  for (const v of ['false', '0', 'no', 'Off']) t.false(parseBool(v), v);
  t.true(parseBool(true));
  t.throws(() => parseBool('maybe', { key: 'boot.autostart' }), {
    message: /^Invalid value "maybe" for boot.autostart: expected true or false/,
  });
});

test('integers', (t) => {
  t.is(parseInteger('42'), 42);
  t.is(parseInteger(7, { min: 1 }), 7);
  t.throws(() => parseInteger('4.2'), { message: /expected a whole number/ });
  t.throws(() => parseInteger('11', { key: 'limits.cpu.priority', min: 0, max: 10 }), {
    message: /"11" for limits.cpu.priority: expected a whole number between 0 and 10/,
  });
  t.throws(() => parseInteger('0', { min: 1 }), { message: /of at least 1/ });
});
