import { context, exitAfterCommand } from '../common.js';
import { defineCommand } from '../define.js';

/**
 * `tslxc serve`: LXD's REST API in the foreground, for the `lxc` client, pylxd and other LXD
 * tools. Optional: the CLI and the containers work without it, and killing it stops no container.
 */
export default defineCommand({
  command: 'serve',
  describe: "Serve LXD's REST API in the foreground on TSLXC_DIR/unix.socket and HTTPS addresses (SIGTERM ends it)",
  positionals: {},
  options: {
    listen: { type: 'string', multiple: true, describe: 'ADDRESS:PORT for HTTPS (TLS 1.3, client certificates); repeatable' },
    group: { type: 'string', describe: 'the group that may use the unix socket (default: root only)' },
  },
  run: async (argv) => {
    const { startServer } = await import('../../api/server.js');
    const info = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const server = await startServer(context(), {
      listen: ((argv.listen as string[] | undefined) ?? []).map(String),
      group: argv.group === undefined ? undefined : String(argv.group),
      info,
    });
    info(`certificate fingerprint ${server.fingerprint}`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => () => {
        info(`${sig}: closing`);
        void server.close().then(resolve);
      };
      process.once('SIGTERM', stop('SIGTERM'));
      process.once('SIGINT', stop('SIGINT'));
    });
    info('stopped');
    // A client that keeps its side open must not keep the process up.
    exitAfterCommand(2000);
  },
});
