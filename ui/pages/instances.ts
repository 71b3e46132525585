import { change, get, instanceUrl, onEvent, text, type LxdEvent } from '../api.js';
import { bytes, clear, duration, h, sparkline, toast } from '../dom.js';
import { parseUsage, type Usage } from '../metrics.js';
import { imageOf, ipv4, STATUS_OF_ACTION, type Instance, type InstanceState } from './model.js';
import type { Page, Session } from './page.js';

/**
 * Instances: a live table. The first paint comes from the list without state (GET
 * /1.0/instances?recursion=1, half the server's work of recursion=2); the state (addresses) is
 * read right after. Changes arrive by the events websocket (a lifecycle event sets the row's
 * state at once and the instance is read again); CPU and memory come from /1.0/metrics every few
 * seconds, which also tells which instances run: a row the metrics contradict (changed without
 * an event, e.g. by the CLI without the server) is read again.
 */

const METRICS_MS = 5000;
const HISTORY = 24;
/** What the first paint needs: names, states, images, last use. The server's Link header preloads it. */
export const LIST_URL = '/1.0/instances?recursion=1';

interface Row {
  inst: Instance;
  tr: HTMLTableRowElement;
  cpuCell?: HTMLTableCellElement;
  memCell?: HTMLTableCellElement;
  upCell?: HTMLTableCellElement;
  cpu: number[];
  mem: number[];
  memNow?: number;
}

let prefetched: Promise<Instance[]> | undefined;

/** Starts reading the list before the page exists (the first page of a visit); the page takes it once. */
export function prefetchInstances(): void {
  if (prefetched) return;
  prefetched = get<Instance[]>(LIST_URL);
  prefetched.catch(() => {});
}

const live = (status: string) => status === 'Running' || status === 'Frozen';

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
  let lastMetrics: { at: number; usage: Map<string, Usage> } | undefined;

  const matches = (r: Row) => {
    const q = filter.value.trim().toLowerCase();
    if (!q) return true;
    return [r.inst.name, r.inst.status, imageOf(r.inst), ...ipv4(r.inst.state)].some((s) => s.toLowerCase().includes(q));
  };

  const uptimeOf = (i: Instance) =>
    i.status === 'Running' && i.last_used_at && !i.last_used_at.startsWith('1970') ? duration(Date.now() - Date.parse(i.last_used_at)) : '-';

  /** The CPU, memory and uptime cells, redrawn at each metrics sample without the rest of the row. */
  const drawUsage = (r: Row) => {
    const i = r.inst;
    const running = i.status === 'Running';
    // A row without any sample yet gets no chart: the first paint builds no SVG.
    r.cpuCell?.replaceChildren(
      ...(r.cpu.length ? [sparkline(r.cpu, 100, `CPU history of ${i.name}`)] : []),
      running && r.cpu.length > 1 ? ` ${r.cpu[r.cpu.length - 1]!.toFixed(1)}%` : '',
    );
    r.memCell?.replaceChildren(
      ...(r.mem.length ? [sparkline(r.mem, 0, `memory history of ${i.name}`)] : []),
      running && r.memNow !== undefined ? ` ${bytes(r.memNow)}` : '',
    );
    if (r.upCell) r.upCell.textContent = uptimeOf(i);
  };

  const draw = (r: Row) => {
    const i = r.inst;
    r.cpuCell = h('td', { class: 'num' });
    r.memCell = h('td', { class: 'num' });
    r.upCell = h('td');
    r.tr.replaceChildren(
      h('th', { scope: 'row' }, h('a', { href: `#/instances/${encodeURIComponent(i.name)}` }, i.name)),
      h('td', { class: `state ${i.status.toLowerCase()}`, 'data-state': i.status }, i.status),
      h('td', {}, ipv4(i.state).join(', ') || '-'),
      h('td', {}, imageOf(i)),
      r.cpuCell,
      r.memCell,
      r.upCell,
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
    drawUsage(r);
    r.tr.hidden = !matches(r);
  };

  const remove = (name: string) => {
    rows.get(name)?.tr.remove();
    rows.delete(name);
    count.textContent = `${rows.size}`;
  };

  /** Adds or redraws a row; a new one goes in name order (the first paint appends a sorted list). */
  const put = (inst: Instance, into: ParentNode = tbody) => {
    let r = rows.get(inst.name);
    if (!r) {
      r = { inst, tr: h('tr', { 'data-name': inst.name }), cpu: [], mem: [] };
      if (into === tbody) {
        let after: Row | undefined;
        for (const [n, x] of rows) if (n > inst.name && (!after || n < after.inst.name)) after = x;
        tbody.insertBefore(r.tr, after?.tr ?? null);
      } else into.append(r.tr);
      rows.set(inst.name, r);
    }
    // An instance read without state (the list) keeps the state the row had.
    r.inst = inst.state === undefined && r.inst.state && live(inst.status) ? { ...inst, state: r.inst.state } : inst;
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

  /** A few rows' state (their addresses), each read as an instance (GET /state would also walk the root for its disk usage). */
  const readStates = async (names: string[]) => {
    for (const name of names) {
      const inst = await get<Instance>(`${instanceUrl(name)}?recursion=1`).catch(() => undefined);
      const r = rows.get(name);
      if (left || !inst?.state || !r) continue;
      r.inst = { ...r.inst, state: inst.state, status: inst.status };
      draw(r);
    }
  };

  /** Every row's state at once (GET /1.0/instances?recursion=2), when anything runs. */
  const readAllStates = async () => {
    if (![...rows.values()].some((r) => live(r.inst.status))) return;
    for (const inst of await get<Instance[]>('/1.0/instances?recursion=2')) {
      const r = rows.get(inst.name);
      if (left) return;
      if (!r || !inst.state) continue;
      r.inst = { ...r.inst, state: inst.state, status: inst.status };
      draw(r);
    }
  };

  const firstPaint = async () => {
    const early = prefetched;
    prefetched = undefined;
    const list = (await early?.catch(() => undefined)) ?? (await get<Instance[]>(LIST_URL));
    performance.mark('instances-listed');
    clear(tbody);
    rows.clear();
    const rowsOfList = document.createDocumentFragment();
    for (const i of [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) put(i, rowsOfList);
    tbody.append(rowsOfList);
  };

  /** Has a nic that may get an address later (a DHCP lease): its state is read again until it has one. */
  const awaitsAddress = (r: Row) =>
    r.inst.status === 'Running' && !ipv4(r.inst.state).length && Object.values(r.inst.expanded_devices ?? r.inst.devices ?? {}).some((d) => d.type === 'nic');

  /**
   * One metrics sample for every row; then what the metrics contradict is read again: a row that
   * runs without metrics or has metrics while stopped, a new or vanished instance.
   */
  const sampleMetrics = async () => {
    const [metricsText, names] = await Promise.all([text('/1.0/metrics'), get<string[]>('/1.0/instances')]);
    if (left) return;
    const now = performance.now();
    const usage = parseUsage(metricsText);
    const stale: string[] = [];
    const addressless: string[] = [];
    for (const r of rows.values()) {
      const name = r.inst.name;
      const u = usage.get(name);
      const before = lastMetrics?.usage.get(name);
      r.cpu.push(
        u && before && lastMetrics && u.cpuSeconds >= before.cpuSeconds ? ((u.cpuSeconds - before.cpuSeconds) * 1000 * 100) / (now - lastMetrics.at) : 0,
      );
      r.mem.push(u?.memoryBytes ?? 0);
      r.memNow = u?.memoryBytes;
      if (r.cpu.length > HISTORY) r.cpu.shift();
      if (r.mem.length > HISTORY) r.mem.shift();
      drawUsage(r);
      if (live(r.inst.status) !== (u !== undefined)) stale.push(name);
      else if (awaitsAddress(r)) addressless.push(name);
    }
    lastMetrics = { at: now, usage };
    const listed = new Set(names.map((u) => decodeURIComponent(u.slice(u.lastIndexOf('/') + 1))));
    for (const n of [...rows.keys()]) if (!listed.has(n)) remove(n);
    for (const n of listed) if (!rows.has(n)) stale.push(n);
    await Promise.all(stale.map((n) => refreshOne(n)));
    await readStates(addressless);
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
      void sampleMetrics()
        .catch(() => {})
        .finally(poll);
    }, METRICS_MS);
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
      unsubscribe = onEvent(onLifecycle);
      document.addEventListener('keydown', keys);
      await firstPaint();
      el.setAttribute('data-ready', 'true');
      // The bench reads it: the table's first render, from the navigation's start.
      performance.mark('instances-rendered');
      // After the first paint: the running rows' addresses and a first metrics sample (memory at
      // once; CPU from the second on).
      void readAllStates()
        .then(() => sampleMetrics())
        .catch(() => {})
        .finally(() => {
          el.setAttribute('data-live', 'true');
          poll();
        });
    },
    leave() {
      left = true;
      window.clearTimeout(timer);
      unsubscribe?.();
      document.removeEventListener('keydown', keys);
    },
  };
}
