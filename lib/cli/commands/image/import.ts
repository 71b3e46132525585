import { defineCommand } from '../../define.js';
import { defaultPaths } from '../../../state/paths.js';

/**
 * `image import`, in a module of its own with nothing heavy in it: it starts the file's one pass
 * (read, hash, copy, list: image/begin.ts) before loading the rest of the import, which then
 * loads while the pass runs.
 */
export const importCmd = defineCommand({
  command: 'import <file> [rootfs]',
  describe: 'Import an LXD image: a unified tarball, or a metadata tarball and its rootfs (tarball or squashfs)',
  positionals: { file: { kind: 'path' }, rootfs: { kind: 'path' } },
  options: { alias: { type: 'string', multiple: true, kind: 'new image', describe: 'name the image (repeatable)' } },
  run: async (argv) => {
    const p = defaultPaths();
    const file = String(argv.file);
    const rootfs = argv.rootfs as string | undefined;
    const aliases = ((argv.alias as string[] | undefined) ?? []).map(String);
    const { beginImport } = await import('../../../image/begin.js');
    const begun = beginImport(p, file, rootfs, aliases);
    const { importImage } = await import('../../../image/lxd.js');
    const r = await importImage(p, file, rootfs, aliases, {}, begun);
    console.log(
      `${r.existed ? 'Image already in the store' : 'Imported image'}: ${r.image.fingerprint}${r.image.aliases.length ? ` (${r.image.aliases.join(', ')})` : ''}`,
    );
  },
});
