/**
 * KEY=VALUE, the one way every command reads it (exec --env, create -c, config set, network and
 * storage settings): the key is what comes before the first "=", and must not be empty; the value
 * is the rest, "=" included.
 */
export function splitKeyValue(s: string): [key: string, value: string] | undefined {
  const eq = s.indexOf('=');
  return eq > 0 ? [s.slice(0, eq), s.slice(eq + 1)] : undefined;
}

/** "K=V" strings (one, a list, or none) into a map; a malformed one is a usage error naming `what`. */
export function parseKeyValues(list: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of ([] as unknown[]).concat(list ?? [])) {
    const kv = splitKeyValue(String(item));
    if (!kv) throw new Error(`Invalid ${what} "${String(item)}": expected KEY=VALUE`);
    out[kv[0]] = kv[1];
  }
  return out;
}
