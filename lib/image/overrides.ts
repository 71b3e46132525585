import type { Paths } from '../state/paths.js';
import type { InstanceConfig } from '../state/config.js';
import { getImage } from './store.js';

/**
 * Where a container's image metadata came from: the image (init, stop signal, environment as the
 * image gives them) or an override made at create (--init, --env) or later. Compared against the
 * image in the store; when it is gone, the values are reported as they are, from "image (not in
 * the store)".
 */
export interface MetadataRow {
  key: string;
  value: string;
  from: string;
  /** the image's value when overridden */
  image?: string;
}

export function metadataOrigins(p: Paths, cfg: InstanceConfig): MetadataRow[] {
  const img = getImage(p, cfg.image?.fingerprint ?? '');
  const rows: MetadataRow[] = [];
  for (const [k, v] of Object.entries(cfg.image ?? {})) if (v !== undefined) rows.push({ key: `image.${k}`, value: String(v), from: 'image (read-only)' });
  if (!img) {
    rows.push({ key: 'init', value: cfg.init.join(' '), from: 'image (not in the store)' });
    rows.push({ key: 'stop_signal', value: cfg.stop_signal, from: 'image (not in the store)' });
    for (const [k, v] of Object.entries(cfg.environment ?? {})) rows.push({ key: `environment.${k}`, value: v, from: 'image (not in the store)' });
    return rows;
  }
  const t = img.metadata.tslxc ?? {};
  const row = (key: string, value: string, imageValue: string | undefined) =>
    rows.push(
      imageValue === value ? { key, value, from: 'image' } : { key, value, from: 'override', ...(imageValue !== undefined ? { image: imageValue } : {}) },
    );
  row('init', cfg.init.join(' '), (t.init ?? ['/sbin/init']).join(' '));
  row('stop_signal', cfg.stop_signal, t.stop_signal ?? 'SIGPWR');
  const ienv = t.environment ?? {};
  for (const [k, v] of Object.entries(cfg.environment ?? {}).sort()) row(`environment.${k}`, v, ienv[k]);
  for (const k of Object.keys(ienv).sort())
    if (!(k in (cfg.environment ?? {}))) rows.push({ key: `environment.${k}`, value: '(removed)', from: 'override', image: ienv[k] });
  return rows;
}
