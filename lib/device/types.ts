import type { DeviceRule } from '../cgroup/devices.js';
import type { IdMap } from '../config/idmap.js';
import type { TslxcError } from '../errors.js';
import type { NetworkReplay } from '../network/replay.js';
import type { Device } from '../profile/store.js';
import type { Paths } from '../state/paths.js';
import type { Reverter } from '../util/revert.js';
import type { InstanceConfig } from '../state/config.js';
import type { RunFile } from '../state/spec.js';
import type { Context } from '../state/context.js';

/**
 * One device type behind one interface, in the spirit of incus's lxd/device (validateConfig,
 * Start, Stop, Update, CanHotPlug with a revert list). A module says which devices are its own
 * and checks their keys; the work at start and on a running container is done by its handler,
 * which gets all the devices of its modules at once: a container's cgroup device list, its disks
 * file and its network are each one thing on the host, whatever the number of devices in them.
 * Two modules share a handler when their devices are planned together (nics and proxies: a proxy
 * forwards to a nic's address).
 */
export interface DeviceType {
  /** a name for the module (unique): what `DevicesOf` is keyed by */
  readonly key: string;
  /** the values of a device's `type` key this module takes */
  readonly types: readonly string[];
  /** when two modules take one type (the root disk is the disk at path /): whether `dev` is this one's */
  owns?(dev: Device): boolean;
  /** Its keys alone, no host state (config device add, profile edits): a one-line TslxcError. */
  validate(name: string, dev: Device): void;
  /** What it names that other objects own (a pool, a network), for changes that must not break every user at its next start. */
  checkTargets?(paths: Paths, name: string, dev: Device): TargetProblem | undefined;
  /** A change of one device of a running container this module cannot make (incus's CanHotPlug): the error, or undefined. */
  refuseLive?(instance: string, dev: string, before: Device, after: Device): TslxcError | undefined;
  /** the start and live work; none: the type only shapes the config (`none`) */
  readonly handler?: DeviceHandler;
}

export type Named = [string, Device];
/** Why a device cannot be used as it is (the caller names the device), and what to do. */
export interface TargetProblem {
  why: string;
  fix?: string;
}
/** A handler's devices, by module key (sorted by name); every key of its modules is there, maybe empty. */
export type DevicesOf = Record<string, Named[]>;

/** What a device handler knows of the instance being started. */
export interface StartInstance {
  ctx: Context;
  /** its config; handlers may set volatile keys in it (a nic's hwaddr) and save it */
  cfg: InstanceConfig;
  /** the id map it starts with; undefined: privileged */
  idmap: IdMap | undefined;
}

/** What a device handler knows of a running instance being changed. */
export interface LiveInstance {
  ctx: Context;
  /** its new config; handlers may set volatile keys in it, the caller saves it */
  cfg: InstanceConfig;
  /** its init's pid (as the host sees it) */
  pid: number;
  /** whether it runs in a user namespace of its own */
  userns: boolean;
  /** its id map (undefined: privileged); throws a one-line error when an unprivileged one's is not recorded */
  idmap(): IdMap | undefined;
}

/** A handler's part of a start, worked out before anything is made (a missing host node fails here). */
export interface StartPart {
  /** device cgroup rules the container's cgroup is made with */
  cgroupRules?: DeviceRule[];
  /** why a saved start plan cannot replay this start (it touches host state other containers share) */
  unreplayable?: string;
  /**
   * What only TypeScript can do before the spec runs (reserve addresses under the networks' lock
   * and publish them: network/instance.ts), its undo on `revert`; `network` says how a saved plan
   * replays it (checks, and the steps it executed).
   */
  prepare?(revert: Reverter): Promise<{ helperArgs?: string[]; network?: NetworkReplay | undefined }>;
  /** the run dir files the monitor reads at every boot, as data: the start spec writes them */
  files?(): RunFile[];
  /** helper start arguments that do not depend on prepare */
  helperArgs?: string[];
}

/** A change to the devices of one handler on a running instance (a changed device is removed then added). */
export interface HandlerChange {
  from: DevicesOf;
  to: DevicesOf;
  removed: Named[];
  added: Named[];
}

/** A live change, checked: `apply` does it, registering each undo on `revert`, and says what it did. */
export interface LiveStep {
  apply(revert: Reverter): Promise<string[]>;
}

export interface DeviceHandler {
  readonly name: string;
  /** At start, before anything is made; called at every start, with its devices or none. */
  start?(t: StartInstance, devices: DevicesOf): StartPart;
  /** A change on a running instance, checked before any handler applies anything: throws when it cannot be made. */
  live?(t: LiveInstance, change: HandlerChange): Promise<LiveStep | undefined>;
  /** A stop is about to end the instance whose monitor is `monitorPid` (the caller cleans up after). */
  stopping?(ctx: Context, name: string, monitorPid: number): void;
  /** After the instance ended for good (or was found dead): what it left on the host. Idempotent. */
  stop?(ctx: Context, name: string): Promise<void>;
}
