import { TslxcError } from '../errors.js';
import { Reverter } from '../util/revert.js';
import type { InstanceConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { createInstance, type CreateOptions } from './create.js';
import { deleteInstance } from './manage.js';

export interface LaunchOptions extends CreateOptions {
  debug?: boolean;
  /** called once create has made the container, before the start */
  created?(cfg: InstanceConfig): void;
}

/**
 * Create, then start. A launch that cannot start leaves nothing behind, as if it had not been
 * asked: what create made is on the revert list until the start succeeds. An init that died at
 * boot is no exception: its console's last lines are in the error already.
 */
export async function launchInstance(ctx: Context, imageRef: string, name: string, opts: LaunchOptions = {}): Promise<InstanceConfig> {
  // Loaded while create waits for its helper runs, not after it.
  const starting = import('./start.js');
  starting.catch(() => {}); // a failed create is the error to report
  const cfg = await createInstance(ctx, imageRef, name, opts);
  opts.created?.(cfg);
  const revert = new Reverter();
  revert.add(() => deleteInstance(ctx, cfg.name, { force: true }));
  try {
    await (await starting).startInstance(ctx, cfg.name, { debug: opts.debug });
  } catch (err) {
    await revert.revert();
    const { InitEndedError } = await starting;
    if (err instanceof InitEndedError)
      throw new TslxcError(`Cannot launch "${cfg.name}"`, err.why, 'it was removed again; launch it again once the cause is fixed');
    throw err;
  }
  return cfg;
}
