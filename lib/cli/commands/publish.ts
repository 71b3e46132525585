import { context } from '../common.js';
import { defineCommand } from '../define.js';
import { humanBytes } from '../ui/format.js';
import { progressReporter } from '../ui/progress.js';

export default defineCommand({
  command: 'publish <name>',
  describe: "Make an image from a container (stopped, or frozen for the copy with --force); its parent is the container's image",
  positionals: { name: { kind: 'container' } },
  options: {
    alias: { type: 'string', multiple: true, kind: 'text', describe: 'name the image (repeatable)' },
    description: { type: 'string', kind: 'text' },
    force: { type: 'boolean', default: false, describe: 'publish a running container, frozen while its root is copied' },
  },
  run: async (argv) => {
    const { publishInstance } = await import('../../instance/publish.js');
    const progress = progressReporter();
    try {
      const img = await publishInstance(context(), String(argv.name), {
        aliases: ((argv.alias as string[] | undefined) ?? []).map(String),
        force: !!argv.force,
        description: argv.description as string | undefined,
        progress,
      });
      progress.done();
      console.log(
        `Published image ${img.fingerprint}${img.aliases.length ? ` (${img.aliases.join(', ')})` : ''} ${humanBytes(img.metadata.tslxc?.size)}, parent ${img.metadata.tslxc?.parent?.slice(0, 12)}`,
      );
    } finally {
      progress.done();
    }
  },
});
