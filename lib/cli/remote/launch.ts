import { TslxcError } from '../../errors.js';
import { instancePath, withRemote } from './connect.js';

/**
 * `create|launch IMAGE REMOTE:NAME`: the image from the remote's own store (an alias or a
 * fingerprint there), POST /1.0/instances, then a start for launch.
 */
export async function remoteCreate(
  remote: string,
  image: string,
  name: string,
  opts: { start: boolean; profiles?: string[]; config?: Record<string, string> },
): Promise<void> {
  const colon = image.indexOf(':');
  if (colon >= 0 && image.slice(0, colon) !== remote)
    throw new TslxcError(
      `Image "${image}" is not on remote "${remote}"`,
      'a remote creates containers from images in its own store',
      `copy the image there first`,
    );
  const src = colon >= 0 ? image.slice(colon + 1) : image;
  if (!src) throw new TslxcError(`Give an image of remote "${remote}"`, undefined, 'an alias or a fingerprint in its store');
  await withRemote(remote, async (s) => {
    const source = /^[0-9a-f]{12,64}$/.test(src) ? { type: 'image', fingerprint: src } : { type: 'image', alias: src };
    await s.run('POST', '/1.0/instances', {
      name,
      type: 'container',
      source,
      config: opts.config ?? {},
      devices: {},
      ...(opts.profiles ? { profiles: opts.profiles } : {}),
    });
    if (opts.start) await s.run('PUT', `${instancePath(name)}/state`, { action: 'start', timeout: -1, force: false, stateful: false });
  });
}
