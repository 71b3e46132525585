import test from 'ava';
import { TslxcError } from '../../../lib/errors.js';
import {
  checkDeviceTargets,
  DEVICE_MODULES,
  deviceTypeNames,
  deviceTypeOf,
  devicesByModule,
  startDevices,
  validateDevice,
} from '../../../lib/device/registry.js';
import type { DeviceHandler, DeviceType, LiveInstance, StartInstance } from '../../../lib/device/types.js';
import { applyDeviceChange } from '../../../lib/instance/hotplug.js';
import { CLEANUP_HANDLERS } from '../../../lib/device/cleanup.js';
import { handlersOf } from '../../../lib/device/registry.js';
import { Context } from '../../../lib/state/context.js';
import type { InstanceConfig } from '../../../lib/state/config.js';

/** The device registry: validation is a lookup by type, and one generic loop applies a live change. */

const paths = { stateDir: '/nonexistent-tslxc', runDir: '/nonexistent-tslxc-run', cacheDir: '/c', cgroupPrefix: 'x' };

test('every type is owned by one module; the root disk is the disk at /', (t) => {
  t.deepEqual(deviceTypeNames().sort(), ['disk', 'nic', 'none', 'proxy', 'unix-block', 'unix-char']);
  t.is(deviceTypeOf('root', { type: 'disk', path: '/', pool: 'default' }).key, 'root-disk');
  t.is(deviceTypeOf('d', { type: 'disk', path: '/srv', source: '/tmp' }).key, 'disk');
  t.is(deviceTypeOf('u', { type: 'unix-block', path: '/dev/b' }).key, 'unix');
  t.is(new Set(DEVICE_MODULES.map((m) => m.key)).size, DEVICE_MODULES.length, 'module keys are unique');
});

test('validation looks the type up; an unknown or missing type is one line', (t) => {
  t.notThrows(() => validateDevice('eth0', { type: 'nic', network: 'tslxcbr0' }));
  t.notThrows(() => validateDevice('eth0', { type: 'none' }));
  t.throws(() => validateDevice('eth0', { network: 'br0' }), { message: /^Invalid device "eth0": it has no type/ });
  const err = t.throws(() => validateDevice('x', { type: 'floppy' }));
  t.regex(err!.message, /^Invalid device "x": unknown type "floppy"/);
  t.false(err!.message.includes('\n'));
  t.throws(
    () => validateDevice('d', { type: 'disk', path: '/srv', source: '/tmp', size: '1GiB' }),
    { message: /only to the root disk/ },
    "the disk module's check",
  );
  t.throws(
    () => validateDevice('web', { type: 'proxy', listen: 'tcp:0.0.0.0:80', connect: 'udp:127.0.0.1:80' }),
    { message: /same protocol/ },
    "the proxy module's check",
  );
  t.throws(() => validateDevice('n', { type: 'nic', network: 'tslxcbr0', color: 'red' }), { message: /unknown nic key "color"/ }, "the nic module's check");
});

test('a fake type is validated by its own module', (t) => {
  const gpu: DeviceType = {
    key: 'gpu',
    types: ['gpu'],
    validate: (name, dev) => {
      if (dev.id !== undefined && !/^\d+$/.test(dev.id)) throw new TslxcError(`Invalid gpu device "${name}"`, '"id" is not a number');
    },
  };
  const modules = [...DEVICE_MODULES, gpu];
  t.notThrows(() => validateDevice('g', { type: 'gpu', id: '0' }, modules));
  t.throws(() => validateDevice('g', { type: 'gpu', id: 'x' }, modules), { message: /Invalid gpu device "g": "id" is not a number/ });
  t.throws(() => validateDevice('g', { type: 'gpu' }), { message: /unknown type "gpu"/ }, 'not registered: unknown');
});

test('what a device names must exist: a pool, a network', (t) => {
  t.throws(() => checkDeviceTargets(paths, 'profile "p"', 'd', { type: 'disk', path: '/srv', pool: 'nosuch', source: 'v' }), {
    message: /^Invalid device "d" of profile "p": storage pool "nosuch" does not exist/,
  });
  t.throws(() => checkDeviceTargets(paths, 'profile "p"', 'eth0', { type: 'nic', network: 'nosuch' }), { message: /network "nosuch" does not exist/ });
  t.notThrows(() => checkDeviceTargets(paths, 'profile "p"', 'root', { type: 'disk', path: '/', pool: 'default' }), 'the default pool is made on first use');
  t.notThrows(() => checkDeviceTargets(paths, 'profile "p"', 'x', { type: 'unix-char', source: '/dev/null' }));
});

/** Two fake types whose handlers log what they do; `b` fails its apply when asked to. */
function fakes(opts: { failApply?: boolean; failPlan?: boolean } = {}) {
  const log: string[] = [];
  const handler = (name: string): DeviceHandler => ({
    name,
    start: (_t, devices) => ({
      cgroupRules: [],
      helperArgs: [`--${name}`, devices[name].map(([n]) => n).join(',')],
      unreplayable: name === 'b' && devices.b.length ? 'b is shared' : undefined,
    }),
    async live(_t, change) {
      if (name === 'b' && opts.failPlan) throw new TslxcError(`Cannot change ${name}`, 'refused before anything');
      log.push(`plan ${name} -${change.removed.map(([n]) => n).join(',')} +${change.added.map(([n]) => n).join(',')}`);
      return {
        async apply(revert) {
          if (name === 'b' && opts.failApply) throw new TslxcError(`Cannot change ${name}`, 'the helper failed');
          log.push(`apply ${name}`);
          revert.add(() => log.push(`undo ${name}`));
          return [`changed ${name}`];
        },
      };
    },
  });
  const a: DeviceType = { key: 'a', types: ['ta'], validate: () => {}, handler: handler('a') };
  const b: DeviceType = {
    key: 'b',
    types: ['tb'],
    validate: () => {},
    refuseLive: (instance, dev, before, after) =>
      before.fixed !== after.fixed
        ? new TslxcError(`Cannot change device "${dev}" of running container "${instance}"`, '"fixed" cannot change while it runs')
        : undefined,
    handler: handler('b'),
  };
  return { log, modules: [a, b] };
}

const cfg = { name: 'c1', config: {} } as unknown as InstanceConfig;
const live: LiveInstance = { ctx: new Context(paths), cfg, pid: 1, userns: false, idmap: () => undefined };

test('a live change: each handler gets its share of the diff, all planned before any is applied', async (t) => {
  const { log, modules } = fakes();
  const r = await applyDeviceChange(live, { x: { type: 'ta' }, y: { type: 'tb', v: '1' } }, { y: { type: 'tb', v: '2' }, z: { type: 'ta' } }, modules);
  t.deepEqual(log, ['plan a -x +z', 'plan b -y +y', 'apply a', 'apply b']);
  t.deepEqual(r.applied, ['changed a', 'changed b']);
  await r.undo();
  t.deepEqual(log.slice(4), ['undo b', 'undo a'], 'undo in reverse order');
});

test('a device that changes type leaves one handler and joins the other', async (t) => {
  const { log, modules } = fakes();
  await applyDeviceChange(live, { x: { type: 'ta' } }, { x: { type: 'tb' } }, modules);
  t.deepEqual(log.slice(0, 2), ['plan a -x +', 'plan b - +x']);
});

test('a failed apply undoes what the handlers before it did, and the error is thrown as it was', async (t) => {
  const { log, modules } = fakes({ failApply: true });
  const err = await t.throwsAsync(applyDeviceChange(live, {}, { x: { type: 'ta' }, y: { type: 'tb' } }, modules));
  t.is(err!.message, 'Cannot change b: the helper failed');
  t.deepEqual(log, ['plan a - +x', 'plan b - +y', 'apply a', 'undo a']);
});

test('a refused plan or a refused device change applies nothing', async (t) => {
  const planned = fakes({ failPlan: true });
  await t.throwsAsync(applyDeviceChange(live, {}, { x: { type: 'ta' }, y: { type: 'tb' } }, planned.modules), { message: /refused before anything/ });
  t.false(planned.log.some((l) => l.startsWith('apply')));
  const refused = fakes();
  await t.throwsAsync(applyDeviceChange(live, { y: { type: 'tb', fixed: '1' } }, { x: { type: 'ta' }, y: { type: 'tb', fixed: '2' } }, refused.modules), {
    message: /^Cannot change device "y" of running container "c1": "fixed" cannot change/,
  });
  t.deepEqual(refused.log, []);
});

test('no change: no handler is asked', async (t) => {
  const { log, modules } = fakes();
  const r = await applyDeviceChange(live, { x: { type: 'ta', k: 'v' } }, { x: { k: 'v', type: 'ta' } }, modules);
  t.deepEqual(r.applied, []);
  t.deepEqual(log, []);
});

test('start: every handler is asked, with its devices or none, in the registry order', async (t) => {
  const { modules } = fakes();
  const start: StartInstance = { ctx: new Context(paths), cfg, idmap: undefined };
  const s = startDevices(start, { y: { type: 'tb' }, x: { type: 'ta' }, w: { type: 'ta' } }, modules);
  t.is(s.unreplayable, 'b is shared');
  t.deepEqual((await s.prepare(undefined as never)).helperArgs, ['--a', 'w,x', '--b', 'y']);
  const none = startDevices(start, {}, modules);
  t.is(none.unreplayable, undefined);
  t.deepEqual((await none.prepare(undefined as never)).helperArgs, ['--a', '', '--b', '']);
  t.deepEqual(Object.keys(devicesByModule({}, modules)), ['a', 'b']);
});

test('every handler with a stop hook is in the list a stop loads (cleanup.ts), and only those', (t) => {
  const withStop = [...handlersOf().keys()].filter((h) => h.stop || h.stopping);
  t.deepEqual(withStop.map((h) => h.name).sort(), CLEANUP_HANDLERS.map((h) => h.name).sort());
  t.true(CLEANUP_HANDLERS.every((h) => withStop.includes(h)));
});
