import { context } from '../../common.js';
import { defineCommand } from '../../define.js';
import { FORMAT_OPTION, type Format } from '../../options/format.js';
import { humanBytes, renderRows, renderValue } from '../../ui/format.js';
import type { TreeNode } from '../../../image/manage.js';

function draw(nodes: TreeNode[], prefix = '', out: string[] = []): string[] {
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    const branch = prefix === '' && out.length === 0 && nodes.length === 1 ? '' : last ? '└── ' : '├── ';
    const name = n.aliases.length ? n.aliases.join(', ') : '(no alias)';
    const cts = `${n.containers.length} container${n.containers.length === 1 ? '' : 's'}${n.containers.length ? ` (${n.containers.join(', ')})` : ''}`;
    out.push(
      `${prefix}${branch}${name}  ${n.fingerprint.slice(0, 12)}  ${n.layer ? '+' : ''}${humanBytes(n.size) || '?'}  ${cts}${n.orphan ? '  [parent not in the store]' : ''}`,
    );
    draw(n.children, prefix + (branch === '' ? '' : last ? '    ' : '│   '), out);
  });
  return out;
}

export const tree = defineCommand({
  command: 'tree',
  describe: 'Draw the image tree: aliases, fingerprints, sizes and the containers using each image',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { imageTree } = await import('../../../image/manage.js');
    const forest = imageTree(context().paths);
    const f = argv.format as Format;
    if (f === 'json' || f === 'yaml') return console.log(renderValue(forest, f));
    console.log(forest.length ? draw(forest).join('\n') : '(no images)');
  },
});

export const descendants = defineCommand({
  command: 'descendants <image>',
  describe: 'Every image and container derived from an image',
  positionals: { image: { kind: 'image' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { requireImage } = await import('../../../image/store.js');
    const { descendantsOf } = await import('../../../image/manage.js');
    const p = context().paths;
    const img = requireImage(p, String(argv.image));
    const d = descendantsOf(p, img.fingerprint);
    const rows = [
      ...d.images.map((i) => ({
        type: 'image',
        name: i.aliases.join(', ') || i.fingerprint.slice(0, 12),
        fingerprint: i.fingerprint,
        from: i.metadata.tslxc?.parent ?? '',
      })),
      ...d.containers.map((c) => ({ type: 'container', name: c.name, fingerprint: '', from: c.image })),
    ];
    console.log(
      renderRows(
        rows,
        [
          { header: 'TYPE', value: (r) => r.type },
          { header: 'NAME', value: (r) => r.name },
          { header: 'FINGERPRINT', value: (r) => r.fingerprint.slice(0, 12) },
          { header: 'FROM', value: (r) => r.from.slice(0, 12) },
        ],
        argv.format as Format,
      ),
    );
  },
});
