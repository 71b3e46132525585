import test from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { assertContainerGone, processesOf } from '../../helpers/leftovers.js';

/** One real Debian container: systemd as PID 1 reaches running (or degraded) and stops cleanly. */
if (requireRoot(test)) {
  const env = new TestEnv('deb');
  test.serial.after.always(async () => {
    await env.cleanup();
  });

  test.serial('debian boots systemd to running and stops cleanly', async (t) => {
    env.ok(t, ['launch', 'debian', 'deb1']);
    t.is(env.ok(t, ['exec', 'deb1', '--', 'cat', '/proc/1/comm']).trim(), 'systemd');
    // Right after start systemd's bus may not be up yet ("offline" or a bus error): ask again.
    let r = env.cli(['exec', 'deb1', '--', 'timeout', '60', 'systemctl', 'is-system-running', '--wait']);
    for (let i = 0; i < 50 && !['running', 'degraded'].includes(r.stdout.trim()); i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = env.cli(['exec', 'deb1', '--', 'timeout', '60', 'systemctl', 'is-system-running', '--wait']);
    }
    const failed = env.cli(['exec', 'deb1', '--', 'systemctl', '--failed', '--no-legend', '--plain']).stdout.trim();
    t.true(['running', 'degraded'].includes(r.stdout.trim()), `systemd: ${r.stdout.trim()} (failed units: ${failed})`);
    t.log(`systemd state: ${r.stdout.trim()}${failed ? `; failed: ${failed}` : ''}`);
    t.is(env.ok(t, ['exec', 'deb1', '--', 'hostname']).trim(), 'deb1');
    t.regex(env.ok(t, ['exec', 'deb1', '--', 'cat', '/etc/machine-id']).trim(), /^[0-9a-f]{32}$/);
    // The recipe disables the generators that can do nothing in a container (templates/debian.yaml).
    const masked = env.ok(t, ['exec', 'deb1', '--', 'sh', '-c', 'for g in /etc/systemd/system-generators/*; do echo "$g $(readlink "$g")"; done']);
    for (const g of ['cryptsetup', 'integritysetup', 'veritysetup', 'gpt-auto', 'hibernate-resume'])
      t.regex(masked, new RegExp(`/systemd-${g}-generator /dev/null$`, 'm'));
    t.notRegex(masked, /getty|fstab|sysv|rc-local/, 'the others still run');
    // /etc and /var are stamped up to date with /usr: systemd-sysusers is skipped at boot.
    t.is(
      env.ok(t, ['exec', 'deb1', '--', 'sh', '-c', 'for d in /etc /var; do [ "$(stat -c %Y.%y $d/.updated)" = "$(stat -c %Y.%y /usr)" ] && echo same; done']),
      'same\nsame\n',
    );
    t.is(env.ok(t, ['exec', 'deb1', '--', 'systemctl', 'show', '-P', 'ConditionResult', 'systemd-sysusers.service']).trim(), 'no');
    for (const unit of ['systemd-network-generator.service', 'systemd-remount-fs.service']) {
      t.is(env.ok(t, ['exec', 'deb1', '--', 'systemctl', 'show', '-P', 'LoadState', unit]).trim(), 'masked', unit);
    }
    const started = Date.now();
    env.ok(t, ['stop', 'deb1']);
    t.true(Date.now() - started < 15_000, 'clean stop took too long: the stop signal was not honoured');
    t.regex(env.cli(['info', 'deb1']).stdout, /Status: STOPPED/);
    assertContainerGone(t, env, 'deb1');
    t.deepEqual(processesOf(env), []);
  });
}
