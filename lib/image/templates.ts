import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../state/paths.js';
import { getImage, type Image } from './store.js';

/**
 * LXD's instance file templates (metadata.yaml `templates:`, files in templates/): rendered into a
 * container's root when the trigger (create, copy, rename) is listed in `when`. LXD uses pongo2;
 * tslxc renders the part of it image templates use for identity — `{{ container.name }}`,
 * `{{ instance.name }}`, `{{ container.hostname }}`, `{{ properties.KEY }}`, `{{ trigger }}` — and
 * skips a template with any other tag (control flow like cloud-init's), naming it, rather than
 * writing a half-rendered file.
 */
export interface Rendered {
  files: Array<{ path: string; content: string; mode?: number }>;
  skipped: string[];
}

export function renderTemplates(image: Image, trigger: 'create' | 'copy' | 'rename', vars: { name: string; hostname: string }): Rendered {
  const out: Rendered = { files: [], skipped: [] };
  for (const [target, t] of Object.entries(image.metadata.templates ?? {})) {
    if (!(t.when ?? []).includes(trigger)) continue;
    if (t.create_only && trigger !== 'create') continue;
    let text: string;
    try {
      text = fs.readFileSync(path.join(image.dir, 'templates', path.basename(t.template)), 'utf8');
    } catch {
      out.skipped.push(`${target} (template ${t.template} missing)`);
      continue;
    }
    if (/\{%|\{#/.test(text)) {
      out.skipped.push(`${target} (uses template tags tslxc does not render)`);
      continue;
    }
    let ok = true;
    const content = text.replace(/\{\{\s*([a-z_.A-Z0-9-]+)\s*\}\}/g, (_m, expr: string) => {
      if (expr === 'container.name' || expr === 'instance.name') return vars.name;
      if (expr === 'container.hostname' || expr === 'instance.hostname') return vars.hostname;
      if (expr === 'trigger') return trigger;
      if (expr.startsWith('properties.')) return t.properties?.[expr.slice(11)] ?? '';
      ok = false;
      return '';
    });
    if (!ok || /\{\{/.test(content)) {
      out.skipped.push(`${target} (uses values tslxc does not render)`);
      continue;
    }
    out.files.push({ path: target, content });
  }
  return out;
}

/**
 * The files an image's templates give a container for a trigger, by the image's fingerprint (an
 * image no longer in the store gives none). For copy and rename, whose callers write the identity
 * files after these.
 */
export function templateFiles(
  p: Paths,
  fingerprint: string | undefined,
  trigger: 'create' | 'copy' | 'rename',
  vars: { name: string; hostname: string },
): Rendered['files'] {
  const img = fingerprint ? getImage(p, fingerprint) : undefined;
  return img ? renderTemplates(img, trigger, vars).files : [];
}
