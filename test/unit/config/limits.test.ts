import test from 'ava';
import { limitsFromConfig } from '../../../lib/config/limits.js';

const ctx = { hostMemoryBytes: 8 * 1024 ** 3, hostCpus: [0, 1, 2, 3] };

test('no limits keys, no limits', (t) => {
  t.deepEqual(limitsFromConfig({ 'security.nesting': 'true' }, ctx), {});
});

test('memory: size, percentage, enforce, swap', (t) => {
  t.deepEqual(limitsFromConfig({ 'limits.memory': '512MiB' }, ctx), { memoryBytes: 512 * 1024 ** 2 });
  t.deepEqual(limitsFromConfig({ 'limits.memory': '25%' }, ctx), { memoryBytes: 2 * 1024 ** 3 });
  t.deepEqual(limitsFromConfig({ 'limits.memory': '1GB', 'limits.memory.enforce': 'soft' }, ctx), { memoryBytes: 1e9, memorySoft: true });
  t.deepEqual(limitsFromConfig({ 'limits.memory': '1G', 'limits.memory.swap': 'false' }, ctx), { memoryBytes: 1024 ** 3, memorySwapBytes: 0 });
  t.deepEqual(limitsFromConfig({ 'limits.memory': '1G', 'limits.memory.swap': true }, ctx), { memoryBytes: 1024 ** 3 });
  t.deepEqual(limitsFromConfig({ 'limits.memory': '1G', 'limits.memory.swap': '256MiB' }, ctx), { memoryBytes: 1024 ** 3, memorySwapBytes: 256 * 1024 ** 2 });
  t.throws(() => limitsFromConfig({ 'limits.memory': '50%' }), { message: /host memory size is unknown/ });
  t.throws(() => limitsFromConfig({ 'limits.memory': '0' }), { message: /must be above 0/ });
  t.throws(() => limitsFromConfig({ 'limits.memory.enforce': 'strict' }), { message: /"strict" for limits.memory.enforce: expected hard or soft/ });
});

test('cpu: a list is kept, a count picks host CPUs spread by name', (t) => {
  t.deepEqual(limitsFromConfig({ 'limits.cpu': '3,0-1' }, ctx), { cpus: '0-1,3' });
  t.deepEqual(limitsFromConfig({ 'limits.cpu': '4' }, ctx), { cpus: '0-3' });
  t.deepEqual(limitsFromConfig({ 'limits.cpu': 2 }, { hostCpus: [0, 1, 2, 3] }), { cpus: '0-1' });
  const picked = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((name) => limitsFromConfig({ 'limits.cpu': '1' }, { ...ctx, name }).cpus));
  t.true(picked.size > 1, 'one-CPU containers are not all put on the same CPU');
  t.is(limitsFromConfig({ 'limits.cpu': '2' }, { ...ctx, name: 'dev1' }).cpus, limitsFromConfig({ 'limits.cpu': '2' }, { ...ctx, name: 'dev1' }).cpus);
  t.throws(() => limitsFromConfig({ 'limits.cpu': '8' }, ctx), { message: /the host has only 4 CPUs/ });
  t.throws(() => limitsFromConfig({ 'limits.cpu': '0-7' }, ctx), { message: /CPU 4-7 does not exist here/ });
});

test('cpu allowance (a percentage is a hard quota, unlike LXD) and priority', (t) => {
  t.deepEqual(limitsFromConfig({ 'limits.cpu.allowance': '25ms/100ms' }, ctx), { cpuQuotaUs: 25_000, cpuPeriodUs: 100_000 });
  t.deepEqual(limitsFromConfig({ 'limits.cpu.allowance': '50%' }, ctx), { cpuQuotaUs: 50_000, cpuPeriodUs: 100_000 });
  t.deepEqual(limitsFromConfig({ 'limits.cpu.allowance': '25%' }, ctx), { cpuQuotaUs: 25_000, cpuPeriodUs: 100_000 });
  t.deepEqual(limitsFromConfig({ 'limits.cpu.allowance': '200%' }, ctx), { cpuQuotaUs: 200_000, cpuPeriodUs: 100_000 });
  t.throws(() => limitsFromConfig({ 'limits.cpu.allowance': '0.5%' }, ctx), { message: /less than 1ms/ });
  t.deepEqual(limitsFromConfig({ 'limits.cpu.allowance': '50%', 'limits.cpu.priority': '0' }, ctx), {
    cpuQuotaUs: 50_000,
    cpuPeriodUs: 100_000,
    cpuWeight: 99,
  });
  t.deepEqual(limitsFromConfig({ 'limits.cpu.priority': '0' }, ctx), { cpuWeight: 99 });
  t.throws(() => limitsFromConfig({ 'limits.cpu.priority': '11' }, ctx), { message: /between 0 and 10/ });
});

test('processes and disk priority', (t) => {
  t.deepEqual(limitsFromConfig({ 'limits.processes': '500' }, ctx), { pidsMax: 500 });
  t.deepEqual(limitsFromConfig({ 'limits.disk.priority': '5' }, ctx), { blkioWeight: 500 });
  t.deepEqual(limitsFromConfig({ 'limits.disk.priority': 0 }, ctx), { blkioWeight: 10 });
  t.throws(() => limitsFromConfig({ 'limits.processes': 'many' }, ctx), { message: /"many" for limits.processes/ });
  t.throws(() => limitsFromConfig({ 'limits.processes': ['1'] }, ctx), { message: /expected a string, got a list/ });
});
