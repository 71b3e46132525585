import { defineCommand, defineGroup } from '../define.js';

const serve = defineCommand({
  command: 'serve',
  describe: 'Serve a content-addressed image registry over HTTP (runs until stopped)',
  positionals: {},
  options: {
    dir: { type: 'string', required: true, describe: 'where blobs and node records are kept' },
    listen: { type: 'string', default: '127.0.0.1:8443', describe: 'HOST:PORT' },
  },
  run: async (argv) => {
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
});

export default defineGroup({
  command: 'registry <command>',
  describe: 'An image registry for image trees',
  subcommands: [serve],
});
