/**
 * The confinement every container process gets, at start and at every attach. Kept in a module of
 * its own (no imports) so exec's fast path can load it.
 */

/**
 * Capabilities no container gets, as LXC's default drop list: loading kernel modules, setting the
 * host clock, raw I/O ports, and the MAC policy knobs. (sys_boot stays: in a pid namespace
 * reboot(2) only signals the container's init, which is how `reboot` inside restarts it.)
 */
export const DROPPED_CAPABILITIES = ['sys_module', 'sys_time', 'sys_rawio', 'mac_admin', 'mac_override'];

/** The run-dir file (a JSON list of helper options) holding the seccomp options init started with. */
export const SECURITY_FILE = 'security.json';

/** Kernel interfaces a container must not read or poke, hidden behind /dev/null or an empty tmpfs. */
export const MASKED_PATHS = [
  '/proc/kcore',
  '/proc/sysrq-trigger',
  '/proc/timer_list',
  '/proc/sched_debug',
  '/proc/latency_stats',
  '/proc/keys',
  '/proc/kallsyms',
  '/proc/acpi',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/kernel/debug',
  '/sys/kernel/security',
];
