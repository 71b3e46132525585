import { get } from '../api.js';
import { bytes, clear, h } from '../dom.js';
import type { Page, Session } from './page.js';

/**
 * Images as the tree they are (GET /1.0/tslxc/image-tree): each node with its aliases, its size
 * (a layer's own size marked +), its containers; choosing a node lists what derives from it,
 * as `tslxc image descendants` does.
 */

interface TreeNode {
  fingerprint: string;
  aliases: string[];
  description: string;
  size?: number;
  layer?: boolean;
  containers: string[];
  children: TreeNode[];
  orphan?: boolean;
}

const label = (n: TreeNode) => (n.aliases.length ? n.aliases.join(', ') : n.fingerprint.slice(0, 12));

function descendants(n: TreeNode): { images: TreeNode[]; containers: Array<{ name: string; image: TreeNode }> } {
  const images: TreeNode[] = [];
  const containers = n.containers.map((name) => ({ name, image: n }));
  const walk = (x: TreeNode) => {
    for (const c of x.children) {
      images.push(c);
      for (const name of c.containers) containers.push({ name, image: c });
      walk(c);
    }
  };
  walk(n);
  return { images, containers };
}

export function imagesPage(_session: Session): Page {
  const tree = h('ul', { class: 'tree', id: 'image-tree', 'aria-label': 'Image tree' });
  const detail = h('section', { id: 'image-detail', 'aria-live': 'polite' });
  const el = h('section', { class: 'page' }, h('h1', {}, 'Images'), h('div', { class: 'grid' }, h('div', {}, tree), detail));

  const show = (n: TreeNode) => {
    const d = descendants(n);
    clear(detail);
    detail.append(
      h('h2', {}, label(n)),
      h('p', { class: 'muted' }, n.fingerprint),
      n.description ? h('p', {}, n.description) : '',
      h('p', {}, `Size: ${n.layer ? `+${bytes(n.size)} (its own layer)` : bytes(n.size)}`),
      h('h3', {}, `Derived images (${d.images.length})`),
      d.images.length
        ? h(
            'ul',
            {},
            d.images.map((i) => h('li', {}, `${label(i)} `, h('span', { class: 'muted' }, i.fingerprint.slice(0, 12)))),
          )
        : h('p', { class: 'muted' }, '(none)'),
      h('h3', {}, `Containers from it and its descendants (${d.containers.length})`),
      d.containers.length
        ? h(
            'ul',
            { id: 'descendant-containers' },
            d.containers.map((c) => h('li', {}, h('a', { href: `#/instances/${encodeURIComponent(c.name)}` }, c.name), ` from ${label(c.image)}`)),
          )
        : h('p', { class: 'muted' }, '(none)'),
    );
  };

  const node = (n: TreeNode): HTMLElement => {
    const button = h(
      'button',
      { type: 'button', class: 'node', 'data-fingerprint': n.fingerprint, onclick: () => show(n) },
      h('strong', {}, label(n)),
      ` ${n.fingerprint.slice(0, 12)} · ${n.layer ? '+' : ''}${bytes(n.size)}`,
      n.orphan ? ' · parent not in the store' : '',
    );
    return h(
      'li',
      {},
      button,
      n.containers.length
        ? h(
            'div',
            { class: 'containers' },
            n.containers.map((c) => h('a', { href: `#/instances/${encodeURIComponent(c)}`, class: 'chip' }, c)),
          )
        : null,
      n.children.length ? h('ul', {}, n.children.map(node)) : null,
    );
  };

  return {
    el,
    async enter() {
      const forest = await get<TreeNode[]>('/1.0/tslxc/image-tree');
      clear(tree);
      if (!forest.length) tree.append(h('li', { class: 'muted' }, '(no images)'));
      tree.append(...forest.map(node));
      if (forest[0]) show(forest[0]);
      el.setAttribute('data-ready', 'true');
    },
  };
}
