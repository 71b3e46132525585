import test from 'ava';
import { Context } from '../../../lib/state/context.js';
import { helperStartArgs } from '../../../lib/instance/start.js';
import { onExitRunFile } from '../../../lib/instance/ephemeral.js';
import { DROPPED_CAPABILITIES, MASKED_PATHS } from '../../../lib/instance/policy.js';
import type { InstanceConfig } from '../../../lib/state/config.js';

const ctx = new Context({ stateDir: '/s', runDir: '/r', cacheDir: '/c', cgroupPrefix: 'p' });
const cfg: InstanceConfig = {
  name: 'c1',
  status: 'created',
  created_at: '',
  hostname: 'h1',
  image: { fingerprint: 'f' },
  init: ['/sbin/init', '--log-level=info'],
  stop_signal: 'SIGRTMIN+3',
  environment: { A: 'b c' },
  profiles: [],
  config: {},
  devices: {},
};

test('start hands the helper the rootfs, hostname, cgroups, policy and init after "--"', (t) => {
  const args = helperStartArgs(ctx, cfg, '/r/containers/c1', ['/cg/cpu/p/c1', '/cg/memory/p/c1'], []);
  t.is(args[0], 'start');
  const opt = (k: string) => args.flatMap((a, i) => (a === k ? [args[i + 1]] : []));
  t.deepEqual(opt('--name'), ['c1']);
  t.deepEqual(opt('--rootfs'), ['/s/containers/c1/rootfs']);
  t.deepEqual(opt('--hostname'), ['h1']);
  t.deepEqual(opt('--run-dir'), ['/r/containers/c1']);
  t.deepEqual(opt('--cgroup'), ['/cg/cpu/p/c1', '/cg/memory/p/c1']);
  t.deepEqual(opt('--env'), ['A=b c']);
  t.deepEqual(opt('--cap-drop').sort(), [...DROPPED_CAPABILITIES].sort());
  for (const c of ['sys_module', 'sys_time', 'sys_rawio', 'mac_admin', 'mac_override']) t.true(opt('--cap-drop').includes(c));
  t.deepEqual(opt('--mask'), MASKED_PATHS);
  t.deepEqual(args.slice(args.indexOf('--') + 1), ['/sbin/init', '--log-level=info']);
  t.false(args.includes('--start-host-hook'));
});

test('the device handlers\' arguments (the network hooks) are passed before "--"', (t) => {
  const args = helperStartArgs(ctx, cfg, '/r/containers/c1', [], ['--start-host-hook', '/r/h1', '--post-stop-hook', '/r/h2']);
  t.is(args[args.indexOf('--start-host-hook') + 1], '/r/h1');
  t.is(args[args.indexOf('--post-stop-hook') + 1], '/r/h2');
  t.true(args.indexOf('--post-stop-hook') < args.indexOf('--'));
});

test("environment.* config keys reach init, over the image's environment", (t) => {
  const args = helperStartArgs(ctx, cfg, '/r/containers/c1', [], [], false, {
    'environment.A': 'from-config',
    'environment.TZ': 'UTC',
    'limits.memory': '1GiB',
  });
  const envs = args.flatMap((a, i) => (a === '--env' ? [args[i + 1]] : []));
  t.deepEqual(envs.sort(), ['A=from-config', 'TZ=UTC']);
});

test('an ephemeral container gets an on-exit program that deletes it through tslxc, on this state', (t) => {
  t.false(helperStartArgs(ctx, cfg, '/r/containers/c1', [], []).includes('--on-exit'));
  const eph = { ...cfg, ephemeral: true };
  const args = helperStartArgs(ctx, eph, '/r/containers/c1', [], []);
  t.is(args[args.indexOf('--on-exit') + 1], '/r/containers/c1/on-exit.sh');
  t.true(args.indexOf('--on-exit') < args.indexOf('--'));
  const file = onExitRunFile(ctx.paths, eph);
  t.is(file.path, '/r/containers/c1/on-exit.sh');
  t.is(file.mode, 0o700);
  t.regex(file.data!, /^#!\/bin\/sh\n/);
  t.regex(file.data!, /TSLXC_DIR='\/s' TSLXC_RUN_DIR='\/r' .*'ephemeral-ended' 'c1'\n$/);
  t.is(onExitRunFile(ctx.paths, cfg).data, undefined, 'none (removed) for one not ephemeral');
});
