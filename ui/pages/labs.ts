import { change, get } from '../api.js';
import { clear, h, toast } from '../dom.js';
import type { Page, Session } from './page.js';

/**
 * Labs (the lab API, /1.0/labs): each lab's members, their containers and states, a reset of one
 * member, and (for an unrestricted session) a member's token to hand out with its login link.
 */

interface Lab {
  name: string;
  description: string;
  network?: { name: string; ipv4: string; state: string };
  gateway?: { host: string; port: number };
  members: Array<{ name: string; trusted: boolean; instances: Array<{ name: string; status: string; ipv4: string[] }> }>;
}

export function labsPage(session: Session): Page {
  const el = h('section', { class: 'page' }, h('h1', {}, 'Labs'));
  const body = h('div');
  el.append(body);

  const tokenBox = (lab: string, member: string) => {
    const out = h('div', { class: 'token' });
    const button = h('button', { type: 'button', 'aria-label': `New token for ${member}` }, 'Token');
    button.addEventListener('click', () => {
      void change<{ token: string; expires_at: string }>('POST', `/1.0/labs/${encodeURIComponent(lab)}/members/${encodeURIComponent(member)}/token`, {
        expires: '1d',
      })
        .then((t) => {
          clear(out);
          const link = `${location.origin}/ui/?token=${encodeURIComponent(t.token)}`;
          out.append(
            h('label', {}, `Token for ${member} (works once, until ${new Date(t.expires_at).toLocaleString()})`),
            h('input', { readonly: true, value: t.token, class: 'mono', 'aria-label': `token for ${member}` }),
            h('label', {}, 'Dashboard login link'),
            h('input', { readonly: true, value: link, class: 'mono', 'aria-label': `login link for ${member}` }),
          );
        })
        .catch((err: unknown) => toast((err as Error).message, true));
    });
    return [button, out];
  };

  const draw = (labs: Lab[]) => {
    clear(body);
    if (!labs.length) body.append(h('p', { class: 'muted' }, '(no labs are up: "tslxc lab up FILE")'));
    for (const lab of labs) {
      body.append(
        h(
          'section',
          { class: 'lab', 'data-lab': lab.name },
          h('h2', {}, lab.name),
          lab.description ? h('p', {}, lab.description) : null,
          h(
            'p',
            { class: 'muted' },
            lab.network ? `Network ${lab.network.name} ${lab.network.ipv4} (${lab.network.state})` : '',
            lab.gateway ? ` · gateway ${lab.gateway.host}:${lab.gateway.port}` : '',
          ),
          h(
            'div',
            { class: 'scroll' },
            h(
              'table',
              {},
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['Member', 'Trusted', 'Containers', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
                ),
              ),
              h(
                'tbody',
                {},
                lab.members.map((m) =>
                  h(
                    'tr',
                    { 'data-member': m.name },
                    h('th', { scope: 'row' }, m.name),
                    h('td', {}, m.trusted ? 'yes' : 'no'),
                    h(
                      'td',
                      {},
                      m.instances.map((i) =>
                        h(
                          'div',
                          {},
                          h('a', { href: `#/instances/${encodeURIComponent(i.name)}` }, i.name),
                          ' ',
                          h('span', { class: `state ${i.status.toLowerCase()}` }, i.status),
                          ` ${i.ipv4.join(', ')}`,
                        ),
                      ),
                    ),
                    h(
                      'td',
                      { class: 'actions' },
                      h(
                        'button',
                        {
                          type: 'button',
                          'aria-label': `Reset ${m.name}`,
                          onclick: () => {
                            if (!window.confirm(`Reset ${m.name}'s containers to their lab-start snapshot?`)) return;
                            void change('POST', `/1.0/labs/${encodeURIComponent(lab.name)}/members/${encodeURIComponent(m.name)}/reset`)
                              .then(() => toast(`${m.name} reset`))
                              .then(load)
                              .catch((err: unknown) => toast((err as Error).message, true));
                          },
                        },
                        'Reset',
                      ),
                      session.restricted ? null : tokenBox(lab.name, m.name),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
      );
    }
  };

  const load = async () => draw(await get<Lab[]>('/1.0/labs?recursion=1'));

  return {
    el,
    async enter() {
      if (!session.extensions.includes('tslxc_labs')) {
        body.append(h('p', { class: 'muted' }, 'This server has no lab API.'));
        return;
      }
      await load();
      el.setAttribute('data-ready', 'true');
    },
  };
}
