import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { repoRoot } from '../../helpers/env.js';
import { TslxcError } from '../../../lib/errors.js';
import { validateChange } from '../../../lib/config/schema.js';
import { parseSyscallList, seccompArgs, securityPolicy } from '../../../lib/config/security.js';
import { SYSCALL_NAMES } from '../../../lib/config/syscalls.js';

test("the TS syscall names are exactly the helper's table (native/syscalls.h)", (t) => {
  const header = fs.readFileSync(path.join(repoRoot, 'native/syscalls.h'), 'utf8');
  const native = [...header.matchAll(/^SYSCALL\("([a-z0-9_]+)"/gm)].map((m) => m[1]);
  t.deepEqual([...SYSCALL_NAMES], native);
  for (const n of ['kexec_load', 'kexec_file_load', 'open_by_handle_at', 'finit_module', 'umount2', 'bpf', 'stime']) t.true(SYSCALL_NAMES.includes(n), n);
});

test('security.syscalls.* take comma lists of known names; anything else is one line naming the key', (t) => {
  t.notThrows(() => validateChange({ 'security.syscalls.deny': 'bpf, kexec_load,,sethostname', 'security.syscalls.allow': 'keyctl' }));
  t.deepEqual(parseSyscallList(' bpf ,bpf,mount ', 'k'), ['bpf', 'mount']);
  for (const v of ['nope', 'bpf,nope', ',', 'kexec load', 'x'.repeat(500)]) {
    const err = t.throws(() => validateChange({ 'security.syscalls.deny': v }), { instanceOf: TslxcError });
    t.regex(err!.message, /^Invalid value for security\.syscalls\.deny: /);
    t.false(err!.message.includes('\n'));
  }
  t.throws(() => validateChange({ 'security.nesting': 'maybe' }), { instanceOf: TslxcError, message: /security\.nesting/ });
  t.notThrows(() => validateChange({ 'security.nesting': 'true' }));
  t.throws(() => validateChange({ 'security.lxcfs': 'maybe' }), { instanceOf: TslxcError, message: /security\.lxcfs/ });
  t.notThrows(() => validateChange({ 'security.lxcfs': 'false' }));
  t.throws(() => validateChange({ 'security.other': '1' }), { instanceOf: TslxcError });
});

test('the policy becomes helper options: deny, allow, nesting; lxcfs unless false', (t) => {
  const p = securityPolicy({
    'security.syscalls.deny': 'sethostname,bpf',
    'security.syscalls.allow': 'swapoff',
    'security.nesting': 'true',
    'limits.memory': '1GiB',
  });
  t.deepEqual(p, { deny: ['sethostname', 'bpf'], allow: ['swapoff'], nesting: true, lxcfs: true });
  t.deepEqual(seccompArgs(p), ['--seccomp-deny', 'sethostname', '--seccomp-deny', 'bpf', '--seccomp-allow', 'swapoff']);
  t.deepEqual(securityPolicy({}), { deny: [], allow: [], nesting: false, lxcfs: true });
  t.false(securityPolicy({ 'security.lxcfs': 'false' }).lxcfs);
});

test('start passes the seccomp options and --cgroup-rw for nesting to the helper, before "--"', async (t) => {
  const { Context } = await import('../../../lib/state/context.js');
  const { helperStartArgs } = await import('../../../lib/instance/start.js');
  const ctx = new Context({ stateDir: '/s', runDir: '/r', cacheDir: '/c', cgroupPrefix: 'p' });
  const cfg = {
    name: 'c1',
    status: 'created' as const,
    created_at: '',
    hostname: 'h1',
    image: { fingerprint: 'f' },
    init: ['/sbin/init'],
    stop_signal: 'SIGRTMIN+3',
    environment: {},
    profiles: [],
    config: {},
    devices: {},
  };
  const args = helperStartArgs(ctx, cfg as never, '/r/c1', [], [], false, {
    'security.syscalls.deny': 'bpf',
    'security.syscalls.allow': 'keyctl',
    'security.nesting': 'yes',
  });
  const end = args.indexOf('--');
  t.true(args.indexOf('--seccomp-deny') < end && args[args.indexOf('--seccomp-deny') + 1] === 'bpf');
  t.is(args[args.indexOf('--seccomp-allow') + 1], 'keyctl');
  t.true(args.includes('--cgroup-rw') && args.indexOf('--cgroup-rw') < end);
  const plain = helperStartArgs(ctx, cfg as never, '/r/c1', [], []);
  t.false(plain.includes('--cgroup-rw') || plain.includes('--seccomp-deny') || plain.includes('--seccomp-allow'));
});
