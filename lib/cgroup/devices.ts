/**
 * The devices a container may open by default, as LXC allows them: the /dev nodes tslxc gives it
 * (null, zero, full, random, urandom, tty, console, ptmx and the devpts slaves), fuse and tun for
 * common guests, and mknod (but not open) of any node so package installs that create device
 * files do not fail. Everything else is denied.
 *
 * Written as v1 devices.allow rules; on v2 the native helper's BPF device program takes the same list.
 */
export interface DeviceRule {
  type: 'a' | 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  access: string;
  /** why it is allowed */
  what: string;
}

export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  { type: 'c', major: '*', minor: '*', access: 'm', what: 'mknod of any character device' },
  { type: 'b', major: '*', minor: '*', access: 'm', what: 'mknod of any block device' },
  { type: 'c', major: 1, minor: 3, access: 'rwm', what: 'null' },
  { type: 'c', major: 1, minor: 5, access: 'rwm', what: 'zero' },
  { type: 'c', major: 1, minor: 7, access: 'rwm', what: 'full' },
  { type: 'c', major: 1, minor: 8, access: 'rwm', what: 'random' },
  { type: 'c', major: 1, minor: 9, access: 'rwm', what: 'urandom' },
  { type: 'c', major: 5, minor: 0, access: 'rwm', what: 'tty' },
  { type: 'c', major: 5, minor: 1, access: 'rwm', what: 'console' },
  { type: 'c', major: 5, minor: 2, access: 'rwm', what: 'ptmx' },
  { type: 'c', major: 136, minor: '*', access: 'rwm', what: 'pts/*' },
  { type: 'c', major: 10, minor: 229, access: 'rwm', what: 'fuse' },
  { type: 'c', major: 10, minor: 200, access: 'rwm', what: 'net/tun' },
];

/** The v1 devices.allow form: "c 1:3 rwm". */
export function deviceRuleText(r: DeviceRule): string {
  return r.type === 'a' ? 'a' : `${r.type} ${r.major}:${r.minor} ${r.access}`;
}

/** The rule granting one device of a container (a unix-char/unix-block device): read, write, mknod. */
export function grantRule(type: 'c' | 'b', major: number, minor: number, what: string): DeviceRule {
  return { type, major, minor, access: 'rwm', what };
}

/** The rules that make up a container's whole list: the defaults, then its devices' grants, each once. */
export function fullDeviceList(extra: readonly DeviceRule[]): DeviceRule[] {
  const seen = new Set<string>();
  const out: DeviceRule[] = [];
  for (const r of [...DEFAULT_DEVICE_RULES, ...extra]) {
    const key = deviceRuleText(r);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}

/**
 * What a live change of a container's grants writes on v1: the rules to allow (new ones) and to
 * deny (gone ones that no default and no remaining grant still gives: revoking "c 1:7 rwm" would
 * otherwise take /dev/full away from a container that had it by default).
 */
export function deviceRuleChange(before: readonly DeviceRule[], after: readonly DeviceRule[]): { allow: DeviceRule[]; deny: DeviceRule[] } {
  const keep = new Set(fullDeviceList(after).map(deviceRuleText));
  const had = new Set(fullDeviceList(before).map(deviceRuleText));
  return {
    allow: fullDeviceList(after).filter((r) => !had.has(deviceRuleText(r))),
    deny: before.filter((r, i) => !keep.has(deviceRuleText(r)) && before.findIndex((o) => deviceRuleText(o) === deviceRuleText(r)) === i),
  };
}
