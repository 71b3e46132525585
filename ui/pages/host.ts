import { get } from '../api.js';
import { bytes, h } from '../dom.js';
import type { Page, Session } from './page.js';

/** The host: CPUs, memory, storage pools with their free space, networks. */

interface HostInfo {
  hostname: string;
  kernel?: string;
  distribution?: string;
  cpu: { model: string; count: number; online: string };
  memory: { totalBytes: number; availableBytes?: number };
  storage?: Array<{ name: string; driver?: string; path: string; freeBytes?: number; sizeBytes?: number }>;
}

interface Network {
  name: string;
  type: string;
  managed: boolean;
  config: Record<string, string>;
  used_by: string[] | null;
}

function meter(used: number, total: number, label: string): HTMLElement {
  const m = h('meter', { min: 0, max: total || 1, value: used, 'aria-label': label });
  return h('span', { class: 'meter' }, m, ` ${bytes(used)} of ${bytes(total)}`);
}

export function hostPage(session: Session): Page {
  const el = h('section', { class: 'page' }, h('h1', {}, 'Host'));
  return {
    el,
    async enter() {
      const info = await get<HostInfo>('/1.0/tslxc/host');
      const mem = info.memory;
      el.append(
        h(
          'table',
          { class: 'kv', id: 'host' },
          h(
            'tbody',
            {},
            h('tr', {}, h('th', { scope: 'row' }, 'Hostname'), h('td', {}, info.hostname)),
            info.distribution ? h('tr', {}, h('th', { scope: 'row' }, 'System'), h('td', {}, `${info.distribution}, kernel ${info.kernel ?? ''}`)) : null,
            h('tr', {}, h('th', { scope: 'row' }, 'CPUs'), h('td', {}, `${info.cpu.count} (${info.cpu.online})${info.cpu.model ? `, ${info.cpu.model}` : ''}`)),
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, 'Memory used'),
              h('td', {}, meter(mem.totalBytes - (mem.availableBytes ?? 0), mem.totalBytes, 'memory used')),
            ),
          ),
        ),
      );
      if (info.storage) {
        el.append(
          h('h2', {}, 'Storage'),
          h(
            'table',
            { id: 'pools' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Pool', 'Driver', 'Path', 'Used', 'Free'].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            h(
              'tbody',
              {},
              info.storage.map((s) =>
                h(
                  'tr',
                  {},
                  h('th', { scope: 'row' }, s.name),
                  h('td', {}, s.driver ?? ''),
                  h('td', {}, s.path),
                  h('td', {}, s.sizeBytes ? meter(s.sizeBytes - (s.freeBytes ?? 0), s.sizeBytes, `${s.name} used`) : '-'),
                  h('td', { class: 'num' }, bytes(s.freeBytes)),
                ),
              ),
            ),
          ),
        );
      }
      if (!session.restricted) {
        const nets = await get<Network[]>('/1.0/networks?recursion=1');
        el.append(
          h('h2', {}, 'Networks'),
          h(
            'table',
            { id: 'networks' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Name', 'Type', 'Managed', 'IPv4', 'Used by'].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            h(
              'tbody',
              {},
              nets.map((n) =>
                h(
                  'tr',
                  {},
                  h('th', { scope: 'row' }, n.name),
                  h('td', {}, n.type),
                  h('td', {}, n.managed ? 'yes' : 'no'),
                  h('td', {}, n.config['ipv4.address'] ?? '-'),
                  h('td', { class: 'num' }, String(n.used_by?.length ?? 0)),
                ),
              ),
            ),
          ),
        );
      }
      el.setAttribute('data-ready', 'true');
    },
  };
}
