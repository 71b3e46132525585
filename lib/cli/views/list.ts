import { renderRows, type Format } from '../ui/format.js';
import type { Context } from '../../state/context.js';
import { listStates, type InstanceState } from '../../instance/status.js';

/** What `tslxc list` prints: one definition for the yargs command and the fast path. */
export async function renderList(ctx: Context, format: Format, filter?: string): Promise<string> {
  if (format === 'json' || format === 'yaml') {
    // The API's objects, as `lxc list --format json` prints LXD's (GET /1.0/instances?recursion=2).
    const { readInstances } = await import('../../api/shapes/instance.js');
    const all = await readInstances(ctx, { full: true, visible: filter ? (n) => n.startsWith(filter) : undefined });
    return renderRows(all, [], format);
  }
  let rows = await listStates(ctx);
  if (filter) rows = rows.filter((r) => r.name.startsWith(filter));
  return renderRows<InstanceState>(
    rows,
    [
      { header: 'NAME', value: (r) => r.name },
      { header: 'STATE', value: (r) => r.status.toUpperCase() },
      { header: 'IPV4', value: (r) => r.ipv4.join(', ') },
      { header: 'IMAGE', value: (r) => r.image },
      { header: 'PID', value: (r) => r.initPid },
    ],
    format,
  );
}
