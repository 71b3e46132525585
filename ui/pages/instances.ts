import { change, get, instanceUrl, onEvent, type LxdEvent } from '../api.js';
import { bytes, clear, duration, h, sparkline, toast } from '../dom.js';
import { imageOf, ipv4, STATUS_OF_ACTION, type Instance, type InstanceState } from './model.js';
import type { Page, Session } from './page.js';

/**
 * Instances: a live table. The list (with state) comes from one recursive request, then changes
 * arrive by the events websocket (a lifecycle event sets the row's state at once and the
 * instance is read again) and the state is polled every few seconds for CPU and memory.
 */

const POLL_MS = 5000;
const HISTORY = 24;

interface Row {
  inst: Instance;
  tr: HTMLTableRowElement;
  cpu: number[];
  mem: number[];
  lastCpu?: { usage: number; at: number };
}

let prefetched: Promise<Instance[]> | undefined;

/** Starts reading the list before the page exists (the first page of a visit); the page takes it once. */
export function prefetchInstances(): void {
  prefetched = get<Instance[]>('/1.0/instances?recursion=2');
  prefetched.catch(() => {});
}

export function actionsFor(status: string): Array<[string, string]> {
  if (status === 'Running')
    return [
      ['stop', 'Stop'],
      ['restart', 'Restart'],
      ['freeze', 'Freeze'],
    ];
  if (status === 'Frozen') return [['unfreeze', 'Unfreeze']];
  return [
    ['start', 'Start'],
    ['delete', 'Delete'],
  ];
}

/** Runs one of the action buttons' actions; true when it went through. */
export async function runAction(name: string, action: string): Promise<boolean> {
  try {
    if (action === 'delete') {
      if (!window.confirm(`Delete ${name}? Its root filesystem and snapshots go too.`)) return false;
      await change('DELETE', instanceUrl(name));
    } else {
      await change('PUT', `${instanceUrl(name)}/state`, { action, timeout: 30 });
    }
    toast(`${name}: ${action} done`);
    return true;
  } catch (err) {
    toast(`${name}: ${action} failed: ${(err as Error).message}`, true);
    return false;
  }
}

export function instancesPage(_session: Session): Page {
  const rows = new Map<string, Row>();
  const filter = h('input', { type: 'search', id: 'filter', placeholder: 'Filter by name, state, address or image  ( / )', 'aria-label': 'Filter instances' });
  const tbody = h('tbody');
  const count = h('span', { class: 'muted' });
  const el = h(
    'section',
    { class: 'page' },
    h('div', { class: 'bar' }, h('h1', {}, 'Instances'), count, filter),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { id: 'instances' },
        h('thead', {}, h('tr', {}, ...['Name', 'State', 'IPv4', 'Image', 'CPU', 'Memory', 'Uptime', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody,
      ),
    ),
  );
  let timer: number | undefined;
  let left = false;
  let unsubscribe: (() => void) | undefined;

  const matches = (r: Row) => {
    const q = filter.value.trim().toLowerCase();
    if (!q) return true;
    return [r.inst.name, r.inst.status, imageOf(r.inst), ...ipv4(r.inst.state)].some((s) => s.toLowerCase().includes(q));
  };

  const sample = (r: Row, state: InstanceState | null | undefined) => {
    const now = performance.now();
    const usage = state?.cpu?.usage ?? 0;
    if (state?.status === 'Running' && r.lastCpu && usage >= r.lastCpu.usage) {
      const pct = ((usage - r.lastCpu.usage) / 1e6 / (now - r.lastCpu.at)) * 100;
      r.cpu.push(pct);
    } else r.cpu.push(0);
    r.lastCpu = { usage, at: now };
    r.mem.push(state?.memory?.usage ?? 0);
    if (r.cpu.length > HISTORY) r.cpu.shift();
    if (r.mem.length > HISTORY) r.mem.shift();
  };

  const draw = (r: Row) => {
    const i = r.inst;
    const running = i.status === 'Running';
    const cpuNow = r.cpu.length ? r.cpu[r.cpu.length - 1]! : 0;
    const memNow = i.state?.memory?.usage;
    const uptime = running && i.last_used_at && !i.last_used_at.startsWith('1970') ? duration(Date.now() - Date.parse(i.last_used_at)) : '-';
    r.tr.replaceChildren(
      h('th', { scope: 'row' }, h('a', { href: `#/instances/${encodeURIComponent(i.name)}` }, i.name)),
      h('td', { class: `state ${i.status.toLowerCase()}`, 'data-state': i.status }, i.status),
      h('td', {}, ipv4(i.state).join(', ') || '-'),
      h('td', {}, imageOf(i)),
      h('td', { class: 'num' }, sparkline(r.cpu, 100, `CPU history of ${i.name}`), running ? ` ${cpuNow.toFixed(1)}%` : ''),
      h('td', { class: 'num' }, sparkline(r.mem, 0, `memory history of ${i.name}`), running && memNow !== undefined ? ` ${bytes(memNow)}` : ''),
      h('td', {}, uptime),
      h(
        'td',
        { class: 'actions' },
        actionsFor(i.status).map(([action, label]) =>
          h(
            'button',
            {
              type: 'button',
              'data-action': action,
              'aria-label': `${label} ${i.name}`,
              onclick: (e: Event) => {
                const b = e.currentTarget as HTMLButtonElement;
                b.disabled = true;
                void runAction(i.name, action).then((ok) => {
                  b.disabled = false;
                  if (ok && action === 'delete') remove(i.name);
                  else void refreshOne(i.name);
                });
              },
            },
            label,
          ),
        ),
      ),
    );
    r.tr.hidden = !matches(r);
  };

  const remove = (name: string) => {
    rows.get(name)?.tr.remove();
    rows.delete(name);
    count.textContent = `${rows.size}`;
  };

  const put = (inst: Instance) => {
    let r = rows.get(inst.name);
    if (!r) {
      r = { inst, tr: h('tr', { 'data-name': inst.name }), cpu: [], mem: [] };
      rows.set(inst.name, r);
      // Rows stay sorted by name.
      const after = [...rows.keys()].sort().find((n) => n > inst.name);
      tbody.insertBefore(r.tr, after ? (rows.get(after)?.tr ?? null) : null);
    }
    r.inst = inst;
    sample(r, inst.state);
    draw(r);
    count.textContent = `${rows.size}`;
  };

  const refreshOne = async (name: string) => {
    try {
      const inst = await get<Instance>(`${instanceUrl(name)}?recursion=1`);
      if (!inst.state) inst.state = await get<InstanceState>(`${instanceUrl(name)}/state`);
      put(inst);
    } catch {
      remove(name);
    }
  };

  const refreshAll = async () => {
    const early = prefetched;
    prefetched = undefined;
    const list = (await early?.catch(() => undefined)) ?? (await get<Instance[]>('/1.0/instances?recursion=2'));
    const seen = new Set(list.map((i) => i.name));
    for (const n of [...rows.keys()]) if (!seen.has(n)) remove(n);
    for (const i of list) put(i);
  };

  const onLifecycle = (e: LxdEvent) => {
    if (e.type !== 'lifecycle') return;
    const source = String(e.metadata.source ?? '');
    const action = String(e.metadata.action ?? '');
    const m = /^\/1\.0\/instances\/([^/]+)$/.exec(source);
    if (!m) return;
    const name = decodeURIComponent(m[1]!);
    if (action === 'instance-deleted') return remove(name);
    const r = rows.get(name);
    const status = STATUS_OF_ACTION[action];
    if (r && status) {
      r.inst = { ...r.inst, status };
      draw(r);
    }
    if (action === 'instance-renamed') {
      const old = (e.metadata.context as { old_name?: string } | undefined)?.old_name;
      if (old) remove(old);
    }
    void refreshOne(name);
  };

  const poll = () => {
    if (left) return;
    timer = window.setTimeout(() => {
      if (document.hidden) return poll();
      void refreshAll()
        .catch(() => {})
        .finally(poll);
    }, POLL_MS);
  };

  const keys = (e: KeyboardEvent) => {
    if (
      e.key === '/' &&
      document.activeElement !== filter &&
      !(document.activeElement instanceof HTMLInputElement) &&
      !(document.activeElement instanceof HTMLTextAreaElement)
    ) {
      e.preventDefault();
      filter.focus();
    }
  };

  filter.addEventListener('input', () => {
    for (const r of rows.values()) r.tr.hidden = !matches(r);
  });

  return {
    el,
    async enter() {
      clear(tbody);
      unsubscribe = onEvent(onLifecycle);
      document.addEventListener('keydown', keys);
      await refreshAll();
      el.setAttribute('data-ready', 'true');
      // The bench reads it: the table's first render, from the navigation's start.
      performance.mark('instances-rendered');
      poll();
    },
    leave() {
      left = true;
      window.clearTimeout(timer);
      unsubscribe?.();
      document.removeEventListener('keydown', keys);
    },
  };
}
