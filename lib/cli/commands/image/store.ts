import fs from 'node:fs';
import { context } from '../../common.js';
import { defineCommand } from '../../define.js';
import { FORMAT_OPTION, type Format } from '../../options/format.js';
import { humanBytes, renderRows, renderValue } from '../../ui/format.js';

const date = (s: number) => new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');

export const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List images in the store',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { listImages } = await import('../../../image/store.js');
    const { containersOf } = await import('../../../image/manage.js');
    const p = context().paths;
    const images = listImages(p).sort((a, b) => a.metadata.creation_date - b.metadata.creation_date);
    console.log(
      renderRows(
        images,
        [
          { header: 'ALIAS', value: (i) => i.aliases.join(', ') },
          { header: 'FINGERPRINT', value: (i) => i.fingerprint.slice(0, 12) },
          { header: 'PARENT', value: (i) => i.metadata.tslxc?.parent?.slice(0, 12) ?? '' },
          { header: 'DESCRIPTION', value: (i) => i.metadata.properties.description },
          { header: 'ARCH', value: (i) => i.metadata.architecture },
          { header: 'SIZE', value: (i) => humanBytes(i.metadata.tslxc?.size) },
          { header: 'CREATED', value: (i) => date(i.metadata.creation_date) },
        ],
        argv.format as Format,
        (i) => ({
          fingerprint: i.fingerprint,
          aliases: i.aliases,
          size: i.metadata.tslxc?.size,
          parent: i.metadata.tslxc?.parent ?? null,
          containers: containersOf(p, i.fingerprint),
          ...i.metadata,
        }),
      ),
    );
  },
});

export const info = defineCommand({
  command: 'info <image>',
  describe: 'Show an image: size, dates, metadata, parent, aliases, containers using it',
  positionals: { image: { kind: 'image' } },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { imageInfo } = await import('../../../image/manage.js');
    const i = imageInfo(context().paths, String(argv.image));
    const f = argv.format as Format;
    if (f === 'json' || f === 'yaml') return console.log(renderValue(i, f));
    const lines = [
      `Fingerprint: ${i.fingerprint}`,
      `Aliases: ${i.aliases.join(', ') || '-'}`,
      `Size: ${humanBytes(i.size) || '-'}${i.stored === 'layer' ? ' (its own layer, over its parent)' : i.unpacked ? '' : ' (the imported archive: unpacked into each container on a dir pool, into the store for an overlay pool)'}`,
      `Created: ${i.created_at}`,
      `Architecture: ${i.architecture}`,
      `OS: ${i.os ?? '-'}`,
      `Release: ${i.release ?? '-'}`,
      `Variant: ${i.variant ?? '-'}`,
      `Description: ${i.description ?? '-'}`,
      `Parent: ${i.parent ? `${i.parent.fingerprint}${i.parent.aliases.length ? ` (${i.parent.aliases.join(', ')})` : ''}${i.parent.missing ? ' (not in the store)' : ''}` : '-'}`,
      `Source: ${i.source}`,
      `Init: ${i.init.join(' ')}`,
      `Stop signal: ${i.stop_signal}`,
      `Environment:${Object.keys(i.environment).length ? '' : ' -'}`,
      ...Object.entries(i.environment).map(([k, v]) => `  ${k}=${v}`),
      `Templates: ${i.templates.join(', ') || '-'}`,
      `Child images: ${i.children.length}${i.children.length ? ` (${i.children.map((c) => c.slice(0, 12)).join(', ')})` : ''}`,
      `Containers: ${i.containers.length}${i.containers.length ? ` (${i.containers.join(', ')})` : ''}`,
    ];
    console.log(lines.join('\n'));
  },
});

export const show = defineCommand({
  command: 'show <image>',
  describe: "Print an image's metadata.yaml",
  positionals: { image: { kind: 'image' } },
  run: async (argv) => {
    const { requireImage } = await import('../../../image/store.js');
    const img = requireImage(context().paths, String(argv.image));
    process.stdout.write(fs.readFileSync(`${img.dir}/metadata.yaml`, 'utf8'));
  },
});

export const edit = defineCommand({
  command: 'edit <image>',
  describe: "Replace an image's metadata from stdin (or edit it in $EDITOR on a terminal)",
  positionals: { image: { kind: 'image' } },
  run: async (argv) => {
    const yaml = (await import('js-yaml')).default;
    const { requireImage } = await import('../../../image/store.js');
    const { editMetadata } = await import('../../../image/manage.js');
    const p = context().paths;
    const img = requireImage(p, String(argv.image));
    let text: string;
    if (process.stdin.isTTY) {
      const { spawnSync } = await import('node:child_process');
      const os = await import('node:os');
      const tmp = fs.mkdtempSync(`${os.tmpdir()}/tslxc-edit-`);
      const file = `${tmp}/metadata.yaml`;
      fs.copyFileSync(`${img.dir}/metadata.yaml`, file);
      spawnSync(process.env.VISUAL || process.env.EDITOR || 'vi', [file], { stdio: 'inherit' });
      text = fs.readFileSync(file, 'utf8');
      fs.rmSync(tmp, { recursive: true, force: true });
    } else {
      text = fs.readFileSync(0, 'utf8');
    }
    let doc: unknown;
    try {
      doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
    } catch (err) {
      const { TslxcError } = await import('../../../errors.js');
      throw new TslxcError('Invalid metadata', (err as Error).message.split('\n')[0]);
    }
    await editMetadata(p, img.fingerprint, doc);
  },
});

export const del = defineCommand({
  command: 'delete <images..>',
  aliases: ['rm'],
  describe: 'Delete images (refused when images or containers derive from them, unless --force)',
  positionals: { images: { kind: 'image' } },
  options: { force: { type: 'boolean', default: false, describe: 'also delete derived images and the containers using them' } },
  run: async (argv) => {
    const { deleteImage } = await import('../../../image/manage.js');
    const { deleteInstance } = await import('../../../instance/manage.js');
    const { forgetImageInPools } = await import('../../../storage/spares.js');
    const ctx = context();
    for (const ref of argv.images as string[]) {
      const r = await deleteImage(ctx.paths, ref, {
        force: !!argv.force,
        deleteContainer: (n) => deleteInstance(ctx, n, { force: true }),
        forgetInPools: (f) => forgetImageInPools(ctx.paths, f),
      });
      const also = [...r.deleted.slice(0, -1).map((f) => `image ${f.slice(0, 12)}`), ...r.containers.map((c) => `container ${c}`)];
      console.log(`Deleted image ${r.deleted[r.deleted.length - 1].slice(0, 12)}${also.length ? `; also deleted ${also.join(', ')}` : ''}`);
    }
  },
});

export const exportCmd = defineCommand({
  command: 'export <image> [target]',
  describe: "Write an image in LXD's format: a unified tarball, or with --split a metadata tarball and a rootfs tarball or squashfs",
  positionals: { image: { kind: 'image' }, target: { kind: 'path', describe: 'a dir, or a file name', default: '.' } },
  options: {
    split: { type: 'boolean', describe: 'metadata and rootfs in two files' },
    squashfs: { type: 'boolean', describe: 'with --split: the rootfs as squashfs' },
    compression: { type: 'string', choices: ['gzip', 'xz', 'zstd'], describe: 'default gzip' },
  },
  run: async (argv) => {
    const { exportImage } = await import('../../../image/lxd.js');
    const r = await exportImage(context().paths, String(argv.image), String(argv.target), {
      split: argv.split as boolean | undefined,
      squashfs: argv.squashfs as boolean | undefined,
      compression: argv.compression as 'gzip' | 'xz' | 'zstd' | undefined,
    });
    for (const f of r.files) console.log(f);
    console.log(`Fingerprint of the export: ${r.fingerprint}`);
  },
});

export const copy = defineCommand({
  command: 'copy <source> [target]',
  describe: 'Copy an image from a remote into the store: image copy REMOTE:ALIAS local: --alias A',
  positionals: { source: { kind: 'image' }, target: { kind: 'remote', default: 'local:' } },
  options: { alias: { type: 'string', multiple: true, kind: 'new image', describe: 'name the image (repeatable)' } },
  run: async (argv) => {
    const { TslxcError } = await import('../../../errors.js');
    if (argv.target !== 'local:' && argv.target !== 'local')
      throw new TslxcError(`Cannot copy to "${String(argv.target)}"`, 'only the local store ("local:") can be a target');
    const { pullRemoteImage } = await import('../../../image/remote.js');
    const { progressReporter } = await import('../../ui/progress.js');
    const progress = progressReporter();
    try {
      const img = await pullRemoteImage(context().paths, String(argv.source), { aliases: ((argv.alias as string[] | undefined) ?? []).map(String), progress });
      progress.done();
      console.log(`Image ${img.fingerprint}${img.aliases.length ? ` (${img.aliases.join(', ')})` : ''} is in the store`);
    } finally {
      progress.done();
    }
  },
});
