import type { CommandModule } from 'yargs';

const serve: CommandModule = {
  command: 'serve',
  describe: 'Serve a content-addressed image registry over HTTP (runs until stopped)',
  builder: (y) =>
    y
      .option('dir', { type: 'string', demandOption: true, describe: 'where blobs and node records are kept' })
      .option('listen', { type: 'string', default: '127.0.0.1:8443', describe: 'HOST:PORT' }),
  handler: async (argv) => {
    const { TslxcError } = await import('../../errors.js');
    const m = /^(.+):(\d+)$/.exec(String(argv.listen));
    if (!m) throw new TslxcError(`Invalid --listen "${String(argv.listen)}"`, 'give HOST:PORT');
    const { serveRegistry } = await import('../../image/registry.js');
    const server = await serveRegistry(String(argv.dir), m[1], Number(m[2]));
    const addr = server.address();
    console.log(`Registry serving ${String(argv.dir)} on ${typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(argv.listen)}`);
    await new Promise<void>((resolve) => {
      const stop = () => server.close(() => resolve());
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

const command: CommandModule = {
  command: 'registry <command>',
  describe: 'An image registry for image trees',
  builder: (y) => y.command(serve).demandCommand(1),
  handler: () => {},
};
export default command;
