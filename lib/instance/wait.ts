import { TslxcError } from '../errors.js';
import { sleep } from '../util/fs.js';
import { loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { instanceState, type InstanceStatus } from './status.js';

const STATES: Record<string, InstanceStatus> = { running: 'Running', stopped: 'Stopped', frozen: 'Frozen', created: 'Created', error: 'Error' };

/** Block until the container reaches a state, or fail after the timeout (seconds). */
export async function waitForState(ctx: Context, name: string, wanted: string, timeoutSec = 60, opts: { ip?: boolean } = {}): Promise<void> {
  const target = STATES[wanted.toLowerCase()];
  if (!target) throw new TslxcError(`Unknown state "${wanted}"`, undefined, `use one of ${Object.keys(STATES).join(', ')}`);
  const deadline = Date.now() + timeoutSec * 1000;
  for (;;) {
    const st = await instanceState(ctx, loadConfig(ctx.paths, name));
    const reached = st.status === target || (target === 'Stopped' && st.status === 'Created');
    // --ip: running and holding an IPv4 address (from its network's DHCP leases)
    if (reached && (!opts.ip || st.ipv4.length > 0)) return;
    if (Date.now() > deadline) {
      throw new TslxcError(
        `Timed out waiting for "${name}" to be ${wanted}${opts.ip ? ' with an IPv4 address' : ''}`,
        `it is ${st.status.toLowerCase()}${reached ? ' without an address' : ''}`,
      );
    }
    await sleep(50);
  }
}
