import fs from 'node:fs';
import { containerRootfs } from '../state/paths.js';
import { copyTree, type Image } from '../image/store.js';
import type { Context } from '../instance/context.js';
import type { InstanceConfig } from '../instance/config.js';

/**
 * The seam between the container lifecycle and storage. Today every container's root is a full
 * copy of its image in TSLXC_DIR/containers/NAME/rootfs (what LXD's `dir` driver does); pools
 * (dir, overlay, btrfs) plug in here:
 *   createRootfs  at create: make the container's root from the image
 *   rootfsArgs    at start: what the native helper needs to mount it (a plain dir: --rootfs DIR)
 *   rootfsPath    where the container's files can be reached on the host while it is stopped
 *   deleteRootfs  at delete
 */
export async function createRootfs(ctx: Context, image: Image, name: string): Promise<void> {
  await copyTree(image.rootfs, containerRootfs(ctx.paths, name));
}

export function rootfsArgs(ctx: Context, cfg: InstanceConfig): string[] {
  return ['--rootfs', containerRootfs(ctx.paths, cfg.name)];
}

export function rootfsPath(ctx: Context, name: string): string {
  return containerRootfs(ctx.paths, name);
}

export async function deleteRootfs(ctx: Context, name: string): Promise<void> {
  fs.rmSync(containerRootfs(ctx.paths, name), { recursive: true, force: true });
}
