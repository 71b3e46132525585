import { TslxcError, errorText } from '../errors.js';
import { parseBool, parseInteger } from '../util/units.js';
import { parseDelaySeconds } from '../config/schema.js';
import { expandInstance } from '../profile/expand.js';
import { listNames, loadConfig } from '../state/config.js';
import type { Context } from '../state/context.js';
import { startInstance } from './start.js';
import { instanceState } from './status.js';

export interface AutostartPlan {
  name: string;
  priority: number;
  delaySeconds: number;
}

/** Containers with boot.autostart=true, highest boot.autostart.priority first (then by name). */
export function autostartPlan(ctx: Context): AutostartPlan[] {
  const plan: AutostartPlan[] = [];
  for (const name of listNames(ctx.paths)) {
    try {
      const c = expandInstance(ctx.paths, loadConfig(ctx.paths, name)).config;
      if (!c['boot.autostart'] || !parseBool(c['boot.autostart'], { key: 'boot.autostart' })) continue;
      plan.push({
        name,
        priority: c['boot.autostart.priority'] ? parseInteger(c['boot.autostart.priority'], { key: 'boot.autostart.priority' }) : 0,
        delaySeconds: c['boot.autostart.delay'] ? parseDelaySeconds(c['boot.autostart.delay']) : 0,
      });
    } catch {
      plan.push({ name, priority: -1, delaySeconds: 0 });
    }
  }
  return plan.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
}

export interface AutostartOutcome {
  name: string;
  result: 'started' | 'already running' | 'failed';
  error?: string;
}

/**
 * Start them in order, waiting each one's delay after it. One that fails does not stop the
 * others (a host boot should bring up as much as it can); the caller reports and exits non-zero.
 */
export async function autostartAll(ctx: Context, opts: { onEvent?: (o: AutostartOutcome) => void; dryRun?: boolean } = {}): Promise<AutostartOutcome[]> {
  const out: AutostartOutcome[] = [];
  for (const p of autostartPlan(ctx)) {
    let o: AutostartOutcome;
    try {
      const st = await instanceState(ctx, loadConfig(ctx.paths, p.name));
      if (p.priority < 0) throw new TslxcError(`Cannot read the autostart settings of "${p.name}"`);
      if (st.status === 'Running' || st.status === 'Frozen') o = { name: p.name, result: 'already running' };
      else {
        if (!opts.dryRun) await startInstance(ctx, p.name);
        o = { name: p.name, result: 'started' };
      }
    } catch (err) {
      o = { name: p.name, result: 'failed', error: errorText(err) };
    }
    out.push(o);
    opts.onEvent?.(o);
    if (o.result === 'started' && p.delaySeconds > 0 && !opts.dryRun) await new Promise((r) => setTimeout(r, p.delaySeconds * 1000));
  }
  return out;
}
