import type { CommandModule } from 'yargs';
import { context, withFormat } from '../common.js';
import { humanBytes, renderRows, type Format } from '../ui/format.js';
import { progressReporter } from '../ui/progress.js';

const list: CommandModule = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List images in the store',
  builder: (y) => withFormat(y),
  handler: async (argv) => {
    const { listImages } = await import('../../image/store.js');
    const images = listImages(context().paths);
    console.log(
      renderRows(
        images,
        [
          { header: 'ALIAS', value: (i) => i.aliases.join(', ') },
          { header: 'FINGERPRINT', value: (i) => i.fingerprint.slice(0, 12) },
          { header: 'DESCRIPTION', value: (i) => i.metadata.properties.description },
          { header: 'ARCH', value: (i) => i.metadata.architecture },
          { header: 'CREATED', value: (i) => new Date(i.metadata.creation_date * 1000).toISOString().slice(0, 19).replace('T', ' ') },
        ],
        argv.format as Format,
        (i) => ({ fingerprint: i.fingerprint, aliases: i.aliases, ...i.metadata }),
      ),
    );
  },
};

const build: CommandModule = {
  command: 'build <recipe>',
  describe: 'Build an image from a recipe (a built-in name or a YAML file)',
  builder: (y) =>
    y
      .positional('recipe', { type: 'string', demandOption: true })
      .option('release', { type: 'string' })
      .option('mirror', { type: 'string' }),
  handler: async (argv) => {
    const { resolveImage } = await import('../../image/store.js');
    const progress = progressReporter();
    try {
      const img = await resolveImage(context().paths, String(argv.recipe), { release: argv.release as string | undefined, mirror: argv.mirror as string | undefined }, progress);
      progress.done();
      console.log(`Image ${img.fingerprint.slice(0, 12)} (${img.aliases.join(', ')}) ${humanBytes(undefined)}`.trim());
    } finally {
      progress.done();
    }
  },
};

const command: CommandModule = {
  command: 'image <command>',
  describe: 'Manage images',
  builder: (y) => y.command(list).command(build).demandCommand(1),
  handler: () => {},
};
export default command;
