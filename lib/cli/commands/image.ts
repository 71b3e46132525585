import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { humanBytes } from '../ui/format.js';
import { progressReporter } from '../ui/progress.js';
import alias from './image/alias.js';
import { copy, del, edit, exportCmd, info, list, show } from './image/store.js';
import { importCmd } from './image/import.js';
import { descendants, tree } from './image/tree.js';
import { pull, push } from './image/registry.js';

const build = defineCommand({
  command: 'build <recipe>',
  describe: 'Build an image from a recipe (a built-in name or a YAML file)',
  positionals: { recipe: { kind: 'path' } },
  options: { release: { type: 'string' }, mirror: { type: 'string' } },
  run: async (argv) => {
    const { resolveImage } = await import('../../image/resolve.js');
    const progress = progressReporter();
    try {
      const img = await resolveImage(
        context().paths,
        String(argv.recipe),
        { release: argv.release as string | undefined, mirror: argv.mirror as string | undefined, build: true },
        progress,
      );
      progress.done();
      console.log(`Image ${img.fingerprint.slice(0, 12)} (${img.aliases.join(', ')}) ${humanBytes(img.metadata.tslxc?.size)}`.trim());
    } finally {
      progress.done();
    }
  },
});

export default defineGroup({
  command: 'image <command>',
  describe: 'Manage images',
  subcommands: [list, info, show, edit, del, exportCmd, importCmd, copy, push, pull, alias, tree, descendants, build],
});
