import { securityPolicy } from '../config/security.js';
import { lxcfsState, lxcfsViewsIn } from '../host/lxcfs.js';
import type { Context } from '../state/context.js';

/**
 * What lxcfs does for one container, as `info` says it (and the API's single-instance answer
 * carries it for remote clients): whether /proc inside shows its limits, and if not, why.
 */
export function lxcfsSummary(ctx: Context, expandedConfig: Record<string, string>, initPid?: number): string {
  if (!securityPolicy(expandedConfig).lxcfs) return "off (security.lxcfs=false): /proc inside shows the host's figures";
  const state = lxcfsState(ctx.paths);
  if (state === 'not installed') return "not installed on the host: /proc/meminfo, cpuinfo and uptime inside show the host's figures";
  if (state === 'dead') return 'died: its files fail inside running containers until the next start of a container restarts it and binds them again';
  if (!initPid) return 'used from its next start';
  const views = lxcfsViewsIn(initPid);
  if (views.length === 0) return "not bound (lxcfs did not run when it started): /proc inside shows the host's figures until its next start";
  return `bound over ${views.join(' ')}: free, top, nproc and uptime inside show its limits`;
}
