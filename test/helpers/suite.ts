import type { TestFn } from 'ava';
import type { TestEnv } from './env.js';
import { cgroupsOf, mountsOf, processesOf } from './leftovers.js';

/**
 * The end of every integration file: remove what the suite made (containers, pools, cgroups, the
 * private dirs, even after a failure), then check that nothing of it is left on the host. Both are
 * serial hooks, so the check runs after the cleanup.
 */
export function leftoverHooks(test: TestFn, env: TestEnv): void {
  test.serial.after.always('cleanup', async () => {
    await env.cleanup();
  });
  test.serial.after.always('nothing of the suite is left on the host', (t) => {
    t.deepEqual(processesOf(env), []);
    t.deepEqual(cgroupsOf(env), []);
    t.deepEqual(mountsOf(env), []);
  });
}
