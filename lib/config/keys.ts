import type { HostFacts } from '../host/facts.js';

/**
 * One key of the config schema (schema.ts). In a module of its own because the key tables of
 * security.ts are typed with it and schema.ts imports those tables.
 */
export interface KeyDef {
  /** the key, or a namespace ending in "." (environment., user.) */
  key: string;
  describe: string;
  /** set by tslxc itself (image.*): shown, never changed by users */
  readOnly?: boolean;
  /** throws a TslxcError naming the key when the value is not acceptable */
  check?: (value: string, key: string, host?: HostFacts) => void;
}
