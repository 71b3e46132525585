import type { CommandModule } from 'yargs';
import { context } from '../common.js';
import { humanBytes } from '../ui/format.js';
import { progressReporter } from '../ui/progress.js';
import alias from './image/alias.js';
import { copy, del, edit, exportCmd, importCmd, info, list, show } from './image/store.js';
import { descendants, tree } from './image/tree.js';
import { pull, push } from './image/registry.js';

const build: CommandModule = {
  command: 'build <recipe>',
  describe: 'Build an image from a recipe (a built-in name or a YAML file)',
  builder: (y) =>
    y
      .positional('recipe', { type: 'string', demandOption: true })
      .option('release', { type: 'string' })
      .option('mirror', { type: 'string' }),
  handler: async (argv) => {
    const { resolveImage } = await import('../../image/resolve.js');
    const progress = progressReporter();
    try {
      const img = await resolveImage(context().paths, String(argv.recipe), { release: argv.release as string | undefined, mirror: argv.mirror as string | undefined, build: true }, progress);
      progress.done();
      console.log(`Image ${img.fingerprint.slice(0, 12)} (${img.aliases.join(', ')}) ${humanBytes(img.metadata.tslxc?.size)}`.trim());
    } finally {
      progress.done();
    }
  },
};

const command: CommandModule = {
  command: 'image <command>',
  describe: 'Manage images',
  builder: (y) => y.command(list).command(info).command(show).command(edit).command(del).command(exportCmd).command(importCmd).command(copy).command(push).command(pull).command(alias).command(tree).command(descendants).command(build).demandCommand(1),
  handler: () => {},
};
export default command;
