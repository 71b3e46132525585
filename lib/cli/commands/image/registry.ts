import { context } from '../../common.js';
import { defineCommand } from '../../define.js';
import { humanBytes } from '../../ui/format.js';
import { progressReporter } from '../../ui/progress.js';

export const push = defineCommand({
  command: 'push <image> <registry>',
  describe: 'Send an image and the ancestors the registry lacks',
  positionals: { image: { kind: 'image' }, registry: { kind: 'url', describe: 'http://HOST:PORT' } },
  run: async (argv) => {
    const { pushImage } = await import('../../../image/registry.js');
    const progress = progressReporter();
    try {
      const r = await pushImage(context().paths, String(argv.image), String(argv.registry), progress);
      progress.done();
      console.log(
        `Pushed ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'} (${r.bytes} bytes, ${humanBytes(r.bytes)}); ${r.skipped} already in the registry`,
      );
    } finally {
      progress.done();
    }
  },
});

export const pull = defineCommand({
  command: 'pull <registry> <image>',
  describe: 'Fetch an image and the ancestors the local store lacks',
  positionals: {
    registry: { kind: 'url', describe: 'http://HOST:PORT' },
    image: { kind: 'image', describe: 'an alias or fingerprint (prefix) in the registry' },
  },
  options: { alias: { type: 'string', multiple: true, kind: 'new image' } },
  run: async (argv) => {
    const { pullImage } = await import('../../../image/registry.js');
    const progress = progressReporter();
    try {
      const r = await pullImage(context().paths, String(argv.registry), String(argv.image), ((argv.alias as string[] | undefined) ?? []).map(String), progress);
      progress.done();
      console.log(
        `Pulled ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'} (${r.bytes} bytes, ${humanBytes(r.bytes)}); ${r.skipped} already in the store; image ${r.image.fingerprint.slice(0, 12)}`,
      );
    } finally {
      progress.done();
    }
  },
});
