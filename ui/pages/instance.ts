import { ApiFailure, change, get, instanceUrl, onEvent, start, text, type LxdEvent } from '../api.js';
import { clear, h, toast } from '../dom.js';
import { actionsFor, runAction } from './instances.js';
import { ipv4, STATUS_OF_ACTION, type Instance } from './model.js';
import type { Page, Session } from './page.js';
import type { TerminalHandle } from './terminal.js';

/**
 * One instance: its state and actions, config and devices with a form to set a key (the
 * server's validation error shown as it comes), snapshots, the console log and a terminal.
 */

interface Snapshot {
  name: string;
  created_at: string;
  stateful: boolean;
}

// Terminal control sequences (colours, cursor queries) and control characters, which a <pre> would
// show as noise; built from strings since a regex literal may not hold control characters.
const ESC = String.fromCharCode(27);
const BEL = String.fromCharCode(7);
const SEQUENCES = new RegExp(`${ESC}(\\[[0-9;?]*[ -/]*[@-~]|\\][^${BEL}]*${BEL}|[@-Z\\\\-_])`, 'g');
const CONTROLS = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(8)}${String.fromCharCode(11)}-${String.fromCharCode(31)}${String.fromCharCode(127)}]`,
  'g',
);
const plain = (s: string) => s.replace(SEQUENCES, '').replace(CONTROLS, '');

const LIMIT_KEYS = ['limits.memory', 'limits.cpu', 'limits.processes', 'limits.cpu.allowance', 'limits.memory.swap', 'boot.autostart'];

function kvTable(id: string, entries: Array<[string, string]>): HTMLElement {
  if (!entries.length) return h('p', { class: 'muted' }, '(none)');
  return h(
    'table',
    { id, class: 'kv' },
    h(
      'tbody',
      {},
      entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v))),
    ),
  );
}

export function instancePage(name: string, _session: Session): Page {
  const url = instanceUrl(name);
  const head = h('div', { class: 'bar' });
  const configBox = h('div');
  const devicesBox = h('div');
  const snapsBox = h('div');
  const consoleBox = h('pre', { id: 'console-log', class: 'log', tabindex: 0 });
  const termBox = h('div', { id: 'terminal', class: 'term-box' });
  const keyInput = h('input', { id: 'config-key', list: 'config-keys', value: 'limits.memory', 'aria-label': 'Config key' });
  const valueInput = h('input', { id: 'config-value', placeholder: 'e.g. 512MiB', 'aria-label': 'Value' });
  const configError = h('p', { id: 'config-error', class: 'error', role: 'alert' });
  const snapName = h('input', { id: 'snapshot-name', placeholder: 'name (optional)', 'aria-label': 'Snapshot name' });
  let terminal: TerminalHandle | undefined;
  let unsubscribe: (() => void) | undefined;
  let inst: Instance | undefined;

  const setForm = h(
    'form',
    { id: 'config-form', class: 'inline' },
    h(
      'datalist',
      { id: 'config-keys' },
      LIMIT_KEYS.map((k) => h('option', { value: k })),
    ),
    keyInput,
    valueInput,
    h('button', { type: 'submit' }, 'Set'),
    h('button', { type: 'button', id: 'config-unset', onclick: () => void setKey(true) }, 'Unset'),
  );
  setForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void setKey(false);
  });

  const setKey = async (unset: boolean) => {
    configError.textContent = '';
    const key = keyInput.value.trim();
    if (!key) return;
    try {
      if (unset) {
        // PATCH cannot remove a key: PUT the config without it (the ETag guards a concurrent change).
        const cur = await get<Instance>(url);
        const config = { ...cur.config };
        delete config[key];
        await change('PUT', url, { config, devices: cur.devices, profiles: cur.profiles });
      } else {
        await change('PATCH', url, { config: { [key]: valueInput.value.trim() } });
      }
      toast(`${key} ${unset ? 'unset' : 'set'}`);
      await load();
    } catch (err) {
      configError.textContent = (err as Error).message;
    }
  };

  const snapForm = h('form', { class: 'inline', id: 'snapshot-form' }, snapName, h('button', { type: 'submit' }, 'Create snapshot'));
  snapForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      try {
        await change('POST', `${url}/snapshots`, snapName.value.trim() ? { name: snapName.value.trim() } : {});
        snapName.value = '';
        toast('Snapshot created');
        await loadSnapshots();
      } catch (err) {
        toast((err as Error).message, true);
      }
    })();
  });

  const termButton = h('button', { type: 'button', id: 'open-terminal' }, 'Open terminal');
  termButton.addEventListener('click', () => {
    if (terminal) {
      terminal.close();
      terminal = undefined;
      termButton.textContent = 'Open terminal';
      return;
    }
    // xterm.js is most of the bundle: it is loaded when a terminal is first opened.
    void import('./terminal.js')
      .then(({ openTerminal }) => openTerminal(termBox, url, start))
      .then((t) => {
        terminal = t;
        termButton.textContent = 'Close terminal';
        void t.closed.then(() => {
          if (terminal === t) {
            terminal = undefined;
            termButton.textContent = 'Open terminal';
          }
        });
      })
      .catch((err: unknown) => toast(`Terminal: ${(err as Error).message}`, true));
  });

  const el = h(
    'section',
    { class: 'page' },
    h('p', {}, h('a', { href: '#/instances' }, '← Instances')),
    head,
    h('div', { class: 'grid' }, h('section', {}, h('h2', {}, 'Config'), configBox, setForm, configError), h('section', {}, h('h2', {}, 'Devices'), devicesBox)),
    h('section', {}, h('h2', {}, 'Snapshots'), snapsBox, snapForm),
    h('section', {}, h('h2', {}, 'Terminal'), termButton, termBox),
    h(
      'section',
      {},
      h('h2', {}, 'Console log'),
      h('button', { type: 'button', id: 'refresh-console', onclick: () => void loadConsole() }, 'Refresh'),
      consoleBox,
    ),
  );

  const drawHead = () => {
    if (!inst) return;
    const i = inst;
    clear(head);
    head.append(
      h('h1', {}, i.name),
      h('span', { id: 'instance-state', class: `state ${i.status.toLowerCase()}`, 'data-state': i.status }, i.status),
      h('span', { class: 'muted' }, ipv4(i.state).join(', ')),
      h(
        'span',
        { class: 'actions' },
        actionsFor(i.status).map(([action, label]) =>
          h(
            'button',
            {
              type: 'button',
              'data-action': action,
              onclick: () =>
                void runAction(i.name, action).then((ok) => {
                  if (ok && action === 'delete') location.hash = '#/instances';
                  else void load();
                }),
            },
            label,
          ),
        ),
      ),
    );
    termButton.disabled = i.status !== 'Running' && !terminal;
  };

  const load = async () => {
    inst = await get<Instance>(`${url}?recursion=1`);
    drawHead();
    const cfg = inst.expanded_config ?? inst.config;
    clear(configBox);
    configBox.append(
      kvTable(
        'config',
        Object.entries(cfg)
          .filter(([k]) => !k.startsWith('volatile.'))
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
    );
    clear(devicesBox);
    const devs = inst.expanded_devices ?? inst.devices;
    devicesBox.append(
      kvTable(
        'devices',
        Object.entries(devs).map(([n, d]) => [
          n,
          Object.entries(d)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        ]),
      ),
    );
  };

  const loadSnapshots = async () => {
    const snaps = await get<Snapshot[]>(`${url}/snapshots?recursion=1`);
    clear(snapsBox);
    if (!snaps.length) return snapsBox.append(h('p', { class: 'muted' }, '(no snapshots)'));
    snapsBox.append(
      h(
        'table',
        { id: 'snapshots' },
        h(
          'tbody',
          {},
          snaps.map((s) => {
            const short = s.name.includes('/') ? s.name.split('/').pop()! : s.name;
            const act = (what: string, fn: () => Promise<unknown>) =>
              h(
                'button',
                {
                  type: 'button',
                  'aria-label': `${what} ${short}`,
                  onclick: () =>
                    void fn()
                      .then(
                        () => toast(`${short}: ${what.toLowerCase()} done`),
                        (err: unknown) => toast((err as Error).message, true),
                      )
                      .then(() => Promise.all([load(), loadSnapshots()])),
                },
                what,
              );
            return h(
              'tr',
              { 'data-snapshot': short },
              h('th', { scope: 'row' }, short),
              h('td', {}, new Date(s.created_at).toLocaleString()),
              h(
                'td',
                { class: 'actions' },
                act('Restore', () => change('PUT', url, { restore: short })),
                act('Delete', () => change('DELETE', `${url}/snapshots/${encodeURIComponent(short)}`)),
              ),
            );
          }),
        ),
      ),
    );
  };

  const loadConsole = async () => {
    try {
      consoleBox.textContent = plain(await text(`${url}/console`)) || '(empty)';
      consoleBox.scrollTop = consoleBox.scrollHeight;
    } catch (err) {
      consoleBox.textContent = err instanceof ApiFailure && err.status === 404 ? '(no console log)' : (err as Error).message;
    }
  };

  const onLifecycle = (e: LxdEvent) => {
    if (e.type !== 'lifecycle' || !inst) return;
    const source = String(e.metadata.source ?? '');
    if (source !== url && !source.startsWith(`${url}/`)) return;
    const status = STATUS_OF_ACTION[String(e.metadata.action)];
    if (status && source === url) {
      inst = { ...inst, status };
      drawHead();
    }
    if (e.metadata.action === 'instance-deleted') return void (location.hash = '#/instances');
    void load().catch(() => {});
    if (source.includes('/snapshots')) void loadSnapshots().catch(() => {});
  };

  return {
    el,
    async enter() {
      await load();
      unsubscribe = onEvent(onLifecycle);
      await Promise.all([loadSnapshots(), loadConsole()]);
      el.setAttribute('data-ready', 'true');
    },
    leave() {
      unsubscribe?.();
      terminal?.close();
    },
  };
}
