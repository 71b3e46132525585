import { TslxcError } from '../../errors.js';
import { LOCAL, loadClientConfig } from '../../client/config.js';
import type { RemoteServer } from '../../client/connection.js';
import { defaultPaths } from '../../state/paths.js';
import { instancePath, withRemote } from './connect.js';

/**
 * `create|launch IMAGE REMOTE:NAME`. The image is the remote's own (an alias or a fingerprint in
 * its store), else it is brought there first as `lxc launch OTHER:IMAGE REMOTE:NAME` does: from
 * another API server ("OTHER:IMAGE") or from this host's store ("local:IMAGE", or a bare name the
 * remote lacks), relayed through this client (lib/client/image-copy.ts). Then POST
 * /1.0/instances, and a start for launch.
 */
export async function remoteCreate(
  remote: string,
  image: string,
  name: string,
  opts: { start: boolean; profiles?: string[]; config?: Record<string, string> },
): Promise<void> {
  const colon = image.indexOf(':');
  const from = colon >= 0 ? image.slice(0, colon) : undefined;
  const ref = colon >= 0 ? image.slice(colon + 1) : image;
  if (!ref) throw new TslxcError(`Give an image for remote "${remote}"`, undefined, 'an alias or a fingerprint');
  if (from !== undefined && from !== remote && from !== LOCAL && !loadClientConfig().remotes[from])
    throw new TslxcError(
      `Image "${image}" is not on an API server`,
      `"${from}" is no tslxc or LXD remote of this client (an image server's images are not relayed yet)`,
      `fetch it here first ("tslxc image copy ${image} local:"), then "tslxc launch local:${ref} ${remote}:${name}"`,
    );
  await withRemote(remote, async (s) => {
    const source = await imageSource(s, from, ref);
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

/** The instance source on S for image REF of FROM (undefined: S's, else this host's). */
async function imageSource(s: RemoteServer, from: string | undefined, ref: string): Promise<{ type: 'image'; alias?: string; fingerprint?: string }> {
  const byRef = () => (/^[0-9a-f]{12,64}$/.test(ref) ? { type: 'image' as const, fingerprint: ref } : { type: 'image' as const, alias: ref });
  if (from === s.name) return byRef();
  const { copyFromLocal, copyFromServer, imageOn } = await import('../../client/image-copy.js');
  if (from === undefined && (await imageOn(s, ref))) return byRef();
  let copied;
  if (from !== undefined && from !== LOCAL) {
    const { withRemote: withOther } = await import('./connect.js');
    copied = await withOther(from, (src) => copyFromServer(src, ref, s));
  } else {
    try {
      copied = await copyFromLocal(defaultPaths(), ref, s);
    } catch (err) {
      if (from === undefined && err instanceof TslxcError && err.kind === 'not-found')
        throw new TslxcError(
          `Image "${ref}" not found on remote "${s.name}" nor here`,
          undefined,
          'give an alias or fingerprint of its images, or of this host\'s ("tslxc image list")',
          {
            kind: 'not-found',
          },
        );
      throw err;
    }
  }
  return copied.alias ? { type: 'image', alias: copied.alias } : { type: 'image', fingerprint: copied.fingerprint };
}
