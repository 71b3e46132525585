import type { Context } from '../state/context.js';
import { configExists, loadConfig } from '../state/config.js';
import { validateChange, validateExpanded } from '../config/schema.js';
import { hostFacts } from '../host/facts.js';
import { getGatewayUser } from '../gateway/users.js';
import { findImage } from '../image/store.js';
import { findRecipe } from '../image/recipe.js';
import { linkExists } from '../network/host.js';
import { networkExists } from '../network/store.js';
import { expandInstance } from '../profile/expand.js';
import { profileExists } from '../profile/store.js';
import { loadPoolIfExists } from '../storage/pool.js';
import { LAB_KEY } from './plan.js';
import type { LabSpec } from './schema.js';

/**
 * The checks of a lab file against this host, made before `up` creates anything: images and
 * profiles exist, config keys are acceptable here, the containers' names are free or already the
 * lab's, gateway user names are free or already the lab's, pools exist. Each refusal names the
 * file, line and field like a parse error.
 */
export function checkLabOnHost(ctx: Context, spec: LabSpec): void {
  const host = hostFacts();
  const p = ctx.paths;
  const settingsOf = [
    { s: spec.defaults, f: spec.defaultFields, at: undefined },
    ...spec.members.map((m) => ({ s: m as LabSpec['defaults'], f: m.fields, at: m.at })),
  ];
  for (const { s, f, at } of settingsOf) {
    if (!imageKnown(ctx, s.image)) {
      (f.image ?? spec.defaultFields.image ?? at ?? spec.network.at).fail(
        `image "${s.image}" is neither in the image store nor a built-in recipe`,
        'see "tslxc image list" and the recipes in templates/',
      );
    }
    const profField = f.profiles ?? spec.defaultFields.profiles ?? at;
    for (const prof of s.profiles)
      if (!profileExists(p, prof)) (profField ?? spec.network.at).fail(`profile "${prof}" does not exist`, 'see "tslxc profile list"');
    const cfgField = f.config;
    if (cfgField) {
      for (const [k, v] of cfgField.entries('config')) v.check(() => validateChange({ [k]: v.text() }, host), 'see "tslxc config keys"');
    }
  }
  for (const m of spec.members) {
    m.at.check(() => validateExpanded(expandInstance(p, { profiles: m.profiles, config: m.config, devices: {} }).config, host, m.containers[0]?.name));
    for (const c of m.containers) {
      if (!configExists(p, c.name)) continue;
      let owner: string | undefined;
      try {
        owner = loadConfig(p, c.name).config?.[LAB_KEY];
      } catch {
        owner = undefined;
      }
      if (owner !== spec.name) {
        (m.fields.naming ?? spec.defaultFields.naming ?? m.at).fail(
          `container "${c.name}" (member "${m.name}") exists and is ${owner ? `part of lab "${owner}"` : 'not part of this lab'}`,
          'rename or delete it, or change the naming pattern',
        );
      }
    }
    const gw = getGatewayUser(p, m.name);
    if (gw && gw.lab !== spec.name) {
      m.at.fail(
        `gateway user "${m.name}" exists and ${gw.lab ? `belongs to lab "${gw.lab}"` : 'was added by hand'}`,
        `rename the member, or remove the user with "tslxc gateway user remove ${m.name}"`,
      );
    }
  }
  if (!networkExists(p, spec.network.name) && linkExists(spec.network.name)) {
    spec.network.at.fail(`the host already has an interface named "${spec.network.name}"`, 'give network.name another name');
  }
  for (const v of spec.volumes) {
    if (v.pool !== 'default' && !loadPoolIfExists(p, v.pool)) v.at.fail(`storage pool "${v.pool}" does not exist`, 'see "tslxc storage list"');
  }
}

function imageKnown(ctx: Context, ref: string): boolean {
  if (ref.includes(':')) return true; // a remote: checked when it is pulled
  try {
    return !!findImage(ctx.paths, ref) || !!findRecipe(ref);
  } catch {
    return false;
  }
}
