import { ApiFailure, get, onSessionEnd, setCsrf, stopEvents } from './api.js';
import { clear, h, toast } from './dom.js';
import { hostPage } from './pages/host.js';
import { imagesPage } from './pages/images.js';
import { instancePage } from './pages/instance.js';
import { instancesPage, prefetchInstances } from './pages/instances.js';
import { labsPage } from './pages/labs.js';
import type { Page, Session } from './pages/page.js';

/**
 * The dashboard's entry: the login (a token pasted, or given once as ?token=), then pages by the
 * address's hash (#/instances, #/instances/NAME, #/images, #/host, #/labs), each built on the API.
 */

const main = document.getElementById('main')!;
let current: Page | undefined;
let session: Session = { name: '', restricted: false, extensions: [] };

async function post(path: string, body?: unknown, csrf = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(csrf ? { 'X-Tslxc-CSRF': csrf } : {}) },
    body: JSON.stringify(body ?? {}),
    credentials: 'same-origin',
  });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

interface SessionInfo {
  name: string;
  restricted: boolean;
  scope: string;
  csrf: string;
  expires_at: string;
}

async function login(token: string): Promise<string | undefined> {
  const r = await post('/ui/login', { token });
  if (r.status !== 200) return String(r.json.error ?? `login failed (${r.status})`);
  await begin(r.json as unknown as SessionInfo);
  return undefined;
}

function loginForm(message?: string): void {
  document.getElementById('top')!.hidden = true;
  const input = h('textarea', { id: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'login-help' });
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { class: 'login' },
    h('h1', {}, 'tslxc'),
    h('label', { for: 'token' }, 'Trust token'),
    input,
    h('p', { id: 'login-help', class: 'muted' }, 'Paste a token from "tslxc config trust add NAME" or "tslxc lab token FILE MEMBER". It works once.'),
    error,
    h('button', { type: 'submit' }, 'Log in'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void login(input.value.trim()).then((err) => {
      if (err) error.textContent = err;
    });
  });
  clear(main);
  main.append(form);
  input.focus();
}

interface ServerInfo {
  api_extensions: string[];
  auth: string;
}

async function begin(info: SessionInfo | undefined, described?: Promise<ServerInfo>): Promise<void> {
  // The first page's data is asked for beside the server's description, not after it.
  const first = location.hash.replace(/^#\/?/, '');
  if (info && (first === '' || first === 'instances')) prefetchInstances();
  const server = await (described ?? get<ServerInfo>('/1.0'));
  if (server.auth !== 'trusted') return loginForm();
  if (info) setCsrf(info.csrf);
  onSessionEnd(
    info
      ? () => {
          current?.leave?.();
          current = undefined;
          loginForm('Your session ended: log in again.');
        }
      : undefined,
  );
  session = { name: info?.name ?? 'certificate', restricted: info?.restricted ?? false, scope: info?.scope, extensions: server.api_extensions };
  document.getElementById('top')!.hidden = false;
  document.getElementById('who')!.textContent = `${session.name}${session.restricted ? ` (only ${session.scope})` : ''}`;
  document.getElementById('nav-labs')!.hidden = !session.extensions.includes('tslxc_labs');
  const logout = document.getElementById('logout')!;
  logout.hidden = !info;
  logout.onclick = () => {
    onSessionEnd(undefined);
    void post('/ui/logout', {}, info?.csrf).then(() => {
      stopEvents();
      current?.leave?.();
      current = undefined;
      loginForm('Logged out.');
    });
  };
  if (!location.hash || location.hash === '#/') history.replaceState(null, '', '#/instances');
  route();
}

function route(): void {
  if (document.getElementById('top')!.hidden) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  current?.leave?.();
  clear(main);
  const page: Page =
    parts[0] === 'instances' && parts[1]
      ? instancePage(parts[1], session)
      : parts[0] === 'images'
        ? imagesPage(session)
        : parts[0] === 'host'
          ? hostPage(session)
          : parts[0] === 'labs'
            ? labsPage(session)
            : instancesPage(session);
  current = page;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a'))
    a.setAttribute('aria-current', a.getAttribute('href') === `#/${parts[0] || 'instances'}` ? 'page' : 'false');
  main.append(page.el);
  page.enter().catch((err: unknown) => {
    if (err instanceof ApiFailure && err.status === 403) return loginForm('Your session ended: log in again.');
    toast(err instanceof Error ? err.message : String(err), true);
  });
}

window.addEventListener('hashchange', route);

async function boot(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token) {
    // The token leaves the address bar (and the history) before anything else happens.
    history.replaceState(null, '', `/ui/${location.hash}`);
    const err = await login(token);
    if (err) loginForm(err);
    return;
  }
  // The session and the server's description together (with a session, the server's Link header
  // has preloaded both, and the instances list).
  const described = get<ServerInfo>('/1.0');
  described.catch(() => {});
  const r = await fetch('/ui/session', { credentials: 'same-origin' });
  const info = (await r.json()) as SessionInfo | { session: null };
  await begin('csrf' in info ? info : undefined, described);
}

void boot().catch((err: unknown) => loginForm(err instanceof Error ? err.message : String(err)));
