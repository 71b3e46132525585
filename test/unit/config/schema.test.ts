import test from 'ava';
import { findKey, validateChange, validateExpanded, validateKey, validateUnsetKey } from '../../../lib/config/schema.js';
import { validateDevice } from '../../../lib/device/registry.js';

const host = { cpus: [0, 1], memoryBytes: 8 * 2 ** 30 };

test('known keys and good values pass', (t) => {
  for (const [k, v] of Object.entries({
    'limits.cpu': '1',
    'limits.cpu.allowance': '25%',
    'limits.cpu.priority': '5',
    'limits.memory': '512MiB',
    'limits.memory.swap': 'false',
    'limits.memory.enforce': 'soft',
    'limits.processes': '100',
    'limits.disk.priority': '0',
    'boot.autostart': 'true',
    'boot.autostart.priority': '10',
    'boot.autostart.delay': '5',
    'environment.FOO_1': 'bar baz',
    'user.note': 'anything at all',
  })) {
    t.notThrows(() => validateKey(k, v, host), k);
  }
  t.notThrows(() => validateKey('limits.memory', '50%', host));
  t.notThrows(() => validateKey('limits.cpu', '0-1', host));
  t.notThrows(() => validateKey('limits.cpu.allowance', '50ms/100ms', host));
  t.notThrows(() => validateKey('boot.autostart.delay', '500ms', host));
});

test('unknown keys, bad units, negative and absurd values are refused with a line naming the key', (t) => {
  t.throws(() => validateKey('limits.bogus', '1', host), { message: /^Unknown config key "limits.bogus"/ });
  t.throws(() => validateKey('security.bogus', 'true', host), { message: /Unknown config key "security.bogus"/ });
  t.throws(() => validateKey('limits.memory', '512XB', host), { message: /"512XB" for limits.memory: unknown unit/ });
  t.throws(() => validateKey('limits.memory', '1KiB', host), { message: /limits.memory: a container needs at least 4MiB/ });
  t.throws(() => validateKey('limits.memory', '64GiB', host), { message: /limits.memory: the host has only 8GiB/ });
  t.throws(() => validateKey('limits.memory', '150%', host), { message: /limits.memory/ });
  t.throws(() => validateKey('limits.processes', '-5', host), { message: /limits.processes/ });
  t.throws(() => validateKey('limits.processes', '99999999999', host), { message: /limits.processes/ });
  t.throws(() => validateKey('limits.cpu', '4', host), { message: /limits.cpu: the host has only 2 CPUs/ });
  t.throws(() => validateKey('limits.cpu', '0-3', host), { message: /limits.cpu: CPU 2-3 does not exist/ });
  t.throws(() => validateKey('limits.cpu.allowance', '300%', host), { message: /limits.cpu.allowance: .*only 2 CPUs/ });
  t.throws(() => validateKey('limits.cpu.allowance', '25', host), { message: /limits.cpu.allowance/ });
  t.throws(() => validateKey('limits.cpu.priority', '11', host), { message: /limits.cpu.priority/ });
  t.throws(() => validateKey('limits.memory.enforce', 'maybe', host), { message: /limits.memory.enforce: expected hard or soft/ });
  t.throws(() => validateKey('boot.autostart', 'sometimes', host), { message: /boot.autostart/ });
  t.throws(() => validateKey('boot.autostart.delay', '2h', host), { message: /boot.autostart.delay: expected at most an hour/ });
  t.throws(() => validateKey('environment.1BAD', 'x', host), { message: /environment.1BAD/ });
  t.throws(() => validateKey('image.os', 'x', host), { message: /read-only/ });
  t.throws(() => validateKey('limits.memory', '', host), { message: /limits.memory: it is empty/ });
  t.throws(() => validateKey('bad key', 'x', host), { message: /Invalid config key/ });
  // Every message is one line.
  const err = t.throws(() => validateKey('limits.memory', '64GiB', host));
  t.false(err!.message.includes('\n'));
});

test('a change is validated as a whole before anything happens', (t) => {
  t.throws(() => validateChange({ 'limits.memory': '1GiB', 'limits.cpu': '9' }, host), { message: /limits.cpu/ });
  t.notThrows(() => validateChange({ 'limits.memory': '1GiB', 'limits.cpu': '2' }, host));
  t.throws(() => validateExpanded({ 'limits.cpu': '4' }, host), { message: /limits.cpu/ });
  t.notThrows(() => validateUnsetKey('limits.whatever'));
  t.throws(() => validateUnsetKey('image.os'), { message: /read-only/ });
  t.is(findKey('user.a.b')?.key, 'user.');
  t.is(findKey('user.'), undefined);
});

test('devices', (t) => {
  t.notThrows(() => validateDevice('eth0', { type: 'nic', network: 'tslxcbr0' }));
  t.notThrows(() => validateDevice('eth0', { type: 'none' }));
  t.throws(() => validateDevice('eth0', { network: 'br0' }), { message: /no type/ });
  t.throws(() => validateDevice('eth0', { type: 'floppy' }), { message: /unknown type "floppy"/ });
  t.throws(() => validateDevice('../x', { type: 'nic' }), { message: /Invalid device name/ });
});
