import fs from 'node:fs';
import path from 'node:path';
import { imageSettings, keptExport, type Image } from '../../image/store.js';

/** LXD's zero time, for dates tslxc does not keep (an image's last use, its expiry). */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** LXD's api.Image. */
export interface ApiImage {
  aliases: Array<{ name: string; description: string }>;
  architecture: string;
  auto_update: boolean;
  cached: boolean;
  created_at: string;
  expires_at: string;
  filename: string;
  fingerprint: string;
  last_used_at: string;
  profiles: string[];
  properties: Record<string, string>;
  public: boolean;
  size: number;
  type: string;
  uploaded_at: string;
}

/** An imported image's kept original file: what export sends, and what its fingerprint hashes. */
export function originalFile(img: Image): string | undefined {
  const o = img.metadata.tslxc?.original;
  return o?.kind === 'unified' ? path.join(img.dir, 'original', o.files[0]) : undefined;
}

/**
 * A built image's kept export (lib/image/lxd.ts keepExport), once made: what export sends, and
 * the fingerprint the API shows for it (the sha256 LXD's clients check a download against).
 * None for an imported image, whose own fingerprint is its files' sha256 already.
 */
export function builtExport(img: Image): { file: string; sha256: string } | undefined {
  return img.metadata.tslxc?.original ? undefined : keptExport(img);
}

/** The fingerprint LXD's clients see: an imported image's own, a built one's kept export's once made, else its tree digest. */
export const apiFingerprint = (img: Image): string => builtExport(img)?.sha256 ?? img.fingerprint;

/** `descriptions`: the aliases' descriptions (lib/image/manage.ts aliasDescriptions). */
export function imageShape(img: Image, descriptions: Record<string, string> = {}): ApiImage {
  const settings = imageSettings(img);
  const props: Record<string, string> = {};
  for (const [k, v] of Object.entries(img.metadata.properties ?? {})) if (v !== undefined) props[k] = String(v);
  const orig = originalFile(img);
  const kept = builtExport(img);
  let size = img.metadata.tslxc?.size ?? 0;
  let uploaded = new Date(img.metadata.creation_date * 1000).toISOString();
  try {
    if (orig ?? kept) size = fs.statSync(orig ?? kept!.file).size;
    uploaded = fs.statSync(img.dir).mtime.toISOString();
  } catch {
    /* deleted meanwhile: the metadata's figures */
  }
  return {
    aliases: img.aliases.map((name) => ({ name, description: descriptions[name] ?? '' })),
    architecture: img.metadata.architecture,
    auto_update: settings.auto_update,
    cached: false,
    created_at: new Date(img.metadata.creation_date * 1000).toISOString(),
    expires_at: settings.expires_at,
    filename: orig ? `${img.fingerprint}${path.basename(orig).replace(/^meta/, '')}` : kept ? `${kept.sha256}.tar.gz` : '',
    fingerprint: kept?.sha256 ?? img.fingerprint,
    last_used_at: ZERO_TIME,
    profiles: settings.profiles,
    properties: props,
    public: settings.public,
    size,
    type: 'container',
    uploaded_at: uploaded,
  };
}

export const imageWritable = (i: Pick<ApiImage, 'auto_update' | 'properties' | 'public' | 'expires_at' | 'profiles'>) => ({
  auto_update: i.auto_update,
  properties: i.properties,
  public: i.public,
  expires_at: i.expires_at,
  profiles: i.profiles,
});

/** LXD's api.ImageAliasesEntry. */
export const aliasShape = (name: string, target: string, description = '') => ({ name, description, target, type: 'container' });

/** What an alias PUT replaces (api.ImageAliasesEntryPut), and what its ETag hashes. */
export const aliasWritable = (a: { description: string; target: string }) => ({ description: a.description, target: a.target });
