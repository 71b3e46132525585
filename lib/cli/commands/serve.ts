import { context, exitAfterCommand } from '../common.js';
import { defineCommand } from '../define.js';
import { parseDuration } from '../../util/units.js';
import { TslxcError } from '../../errors.js';

/** Warm while someone works (LXD's daemon never sleeps): a pause of a few minutes costs nothing. */
const DEFAULT_IDLE_TIMEOUT = '10m';

function idleTimeoutMs(value: string): number {
  if (value === 'never') return 0;
  try {
    return parseDuration(value);
  } catch {
    throw new TslxcError(`Invalid --idle-timeout "${value}"`, 'expected a duration like 30s or 10m, or "never"', 'e.g. --idle-timeout 10m');
  }
}

/**
 * `tslxc serve`: LXD's REST API in the foreground, for the `lxc` client, pylxd and other LXD
 * tools. Optional: the CLI and the containers work without it, and killing it stops no container.
 * Started by bin/tslxc through the native front (lib/api/front.ts), it runs while it is used and
 * leaves its sockets to the front when idle; without the front it is always on.
 */
export default defineCommand({
  command: 'serve',
  describe: "Serve LXD's REST API in the foreground on TSLXC_DIR/unix.socket and HTTPS addresses (SIGTERM ends it)",
  positionals: {},
  options: {
    listen: { type: 'string', multiple: true, describe: 'ADDRESS:PORT for HTTPS (TLS 1.3, client certificates); repeatable' },
    group: { type: 'string', describe: 'the group that may use the unix socket (default: root only)' },
    'idle-timeout': {
      type: 'string',
      describe: `after this long unused, node exits and a small process keeps the sockets until the next client (default ${DEFAULT_IDLE_TIMEOUT}; 0 or never: always on)`,
    },
  },
  run: async (argv) => {
    const idleMs = idleTimeoutMs(String(argv['idle-timeout'] ?? DEFAULT_IDLE_TIMEOUT));
    const { startServer } = await import('../../api/server.js');
    const { ServeFront } = await import('../../api/front.js');
    const front = ServeFront.fromEnv();
    const info = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const server = await startServer(context(), {
      listen: ((argv.listen as string[] | undefined) ?? []).map(String),
      group: argv.group === undefined ? undefined : String(argv.group),
      info,
      inherited: front?.inherited,
    });
    info(`certificate fingerprint ${server.fingerprint}`);
    const ended = new Promise<'stopped'>((resolve) => {
      const stop = (sig: string) => () => {
        info(`${sig}: closing`);
        front?.stopping();
        void server.close().then(() => resolve('stopped'));
      };
      process.once('SIGTERM', stop('SIGTERM'));
      process.once('SIGINT', stop('SIGINT'));
    });
    const retired =
      front && idleMs > 0 && (await front.ready(server.handover))
        ? front.whenIdle(server, idleMs).then(() => 'retired' as const)
        : new Promise<never>(() => {});
    if ((await Promise.race([ended, retired])) === 'retired') {
      info('idle: the sockets wait with the front for the next client');
      // The lock and the socket's file are the front's now: the process ends without a close.
      exitAfterCommand(0);
      return;
    }
    info('stopped');
    // A client that keeps its side open must not keep the process up.
    exitAfterCommand(2000);
  },
});
