import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows } from '../ui/format.js';

/**
 * `tslxc remote ...`: image servers (simplestreams, kept in TSLXC_DIR with the image store) and
 * API servers (tslxc or LXD, protocol lxd, kept in the user's own client config: lib/client), as
 * `lxc remote` has both. `remote add` tells them apart as lxc does: a token or --protocol lxd is
 * an API server, --protocol simplestreams or an http:// URL an image server; an https:// URL
 * without --protocol is asked GET /1.0, which only an API server answers in LXD's envelope.
 */

const add = defineCommand({
  command: 'add <name> <target>',
  describe: 'Add an API server (a token from "config trust add", or https://HOST:PORT) or a simplestreams image server (URL)',
  positionals: { name: { kind: 'new remote' }, target: { kind: 'url', describe: 'a trust token, or the URL' } },
  options: {
    protocol: { type: 'string', choices: ['lxd', 'simplestreams'], describe: 'lxd: a tslxc or LXD server; simplestreams: an image server' },
    'accept-certificate': { type: 'boolean', describe: "trust the server's certificate without asking (check its fingerprint first)" },
    password: { type: 'string', kind: 'text', describe: "the server's trust password or token" },
  },
  run: async (argv) => {
    const name = String(argv.name);
    const targetText = String(argv.target);
    const { parseToken, isApiServer, addServerRemote } = await import('../../client/add.js');
    let protocol = argv.protocol as string | undefined;
    if (!protocol) {
      if (parseToken(targetText) || !/^[a-z]+:\/\//i.test(targetText)) protocol = 'lxd';
      else if (/^https:\/\//i.test(targetText)) protocol = (await isApiServer(targetText)) ? 'lxd' : 'simplestreams';
      else protocol = 'simplestreams';
    }
    if (protocol === 'simplestreams') {
      if (argv.password !== undefined || argv['accept-certificate'])
        throw new TslxcError('--password and --accept-certificate are for API servers', undefined, 'leave them out for an image server');
      const { loadClientConfig } = await import('../../client/config.js');
      if (loadClientConfig().remotes[name])
        throw new TslxcError(`Remote "${name}" already exists`, 'an API server has that name', 'pick another name', { kind: 'conflict' });
      const { addRemote } = await import('../../image/remote.js');
      await addRemote(context().paths, name, targetText);
      return;
    }
    await refuseImageRemoteName(name);
    const r = await addServerRemote(name, targetText, { acceptCertificate: !!argv['accept-certificate'], password: argv.password as string | undefined });
    console.log(`Remote ${name} added: ${r.addr} (certificate ${r.fingerprint.slice(0, 12)})`);
  },
});

/** The simplestreams remotes, or none where this user cannot read the state (a client without a server). */
async function imageRemotes(): Promise<Record<string, { url: string; protocol: string }>> {
  const { listRemotes } = await import('../../image/remote.js');
  try {
    return listRemotes(context().paths);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return {};
    throw err;
  }
}

async function refuseImageRemoteName(name: string): Promise<void> {
  if ((await imageRemotes())[name])
    throw new TslxcError(`Remote "${name}" already exists`, 'an image server has that name', 'pick another name', { kind: 'conflict' });
}

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List remotes: this host, API servers and image servers',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { defaultRemote, loadClientConfig, LOCAL } = await import('../../client/config.js');
    const current = defaultRemote();
    const rows = [
      { name: LOCAL, url: 'unix://', protocol: 'tslxc', current: current === LOCAL },
      ...Object.entries(loadClientConfig().remotes).map(([name, r]) => ({ name, url: r.addr, protocol: r.protocol, current: current === name })),
      ...Object.entries(await imageRemotes()).map(([name, r]) => ({ name, url: r.url, protocol: r.protocol, current: false })),
    ];
    const table = argv.format === 'table';
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => (table && r.current ? `${r.name} (current)` : r.name) },
          { header: 'URL', value: (r) => r.url },
          { header: 'PROTOCOL', value: (r) => r.protocol },
        ],
        argv.format as Format,
      ),
    );
  },
});

const switchCmd = defineCommand({
  command: 'switch <name>',
  describe: 'Make an API server the default remote for names without "REMOTE:" ("local": this host again)',
  positionals: { name: { kind: 'remote' } },
  run: async (argv) => {
    const { loadClientConfig, setDefaultRemote, LOCAL } = await import('../../client/config.js');
    const name = String(argv.name);
    if (name !== LOCAL && !loadClientConfig().remotes[name]) {
      const image = (await imageRemotes())[name];
      throw new TslxcError(
        `Remote "${name}" ${image ? 'is an image server' : 'not found'}`,
        undefined,
        image ? 'switch to an API server or "local"' : 'see "tslxc remote list"',
      );
    }
    setDefaultRemote(name);
  },
});

const remove = defineCommand({
  command: 'remove <name>',
  aliases: ['rm'],
  describe: 'Remove a remote',
  positionals: { name: { kind: 'remote' } },
  run: async (argv) => {
    const name = String(argv.name);
    const { clientDir, defaultRemote, forgetRemoteFiles, loadClientConfig, saveClientConfig, serverCertFile, LOCAL } = await import('../../client/config.js');
    if (name === LOCAL) throw new TslxcError('Remote "local" cannot be removed', 'it is this host');
    const cfg = loadClientConfig();
    if (!cfg.remotes[name]) {
      const { removeRemote } = await import('../../image/remote.js');
      await removeRemote(context().paths, name);
      return;
    }
    if (defaultRemote() === name)
      throw new TslxcError(`Remote "${name}" is the default remote`, undefined, 'switch to another first ("tslxc remote switch local")');
    delete cfg.remotes[name];
    saveClientConfig(cfg);
    const fs = await import('node:fs');
    fs.rmSync(serverCertFile(clientDir(), name), { force: true });
    forgetRemoteFiles(clientDir(), name);
  },
});

const rename = defineCommand({
  command: 'rename <from> <to>',
  describe: 'Rename a remote',
  positionals: { from: { kind: 'remote' }, to: { kind: 'new remote' } },
  run: async (argv) => {
    const [from, to] = [String(argv.from), String(argv.to)];
    const { clientDir, defaultRemote, forgetRemoteFiles, loadClientConfig, saveClientConfig, serverCertFile, setDefaultRemote, validateRemoteName } =
      await import('../../client/config.js');
    const cfg = loadClientConfig();
    if (!cfg.remotes[from]) {
      if (cfg.remotes[to]) throw new TslxcError(`Remote "${to}" already exists`);
      const { renameRemote } = await import('../../image/remote.js');
      await renameRemote(context().paths, from, to);
      return;
    }
    validateRemoteName(to);
    if (cfg.remotes[to]) throw new TslxcError(`Remote "${to}" already exists`);
    await refuseImageRemoteName(to);
    const fs = await import('node:fs');
    fs.renameSync(serverCertFile(clientDir(), from), serverCertFile(clientDir(), to));
    cfg.remotes[to] = cfg.remotes[from]!;
    delete cfg.remotes[from];
    saveClientConfig(cfg);
    if (defaultRemote() === from) setDefaultRemote(to);
    forgetRemoteFiles(clientDir(), from);
  },
});

export default defineGroup({
  command: 'remote <command>',
  describe: 'Manage remotes: tslxc and LXD servers (the CLI as their client) and simplestreams image servers',
  subcommands: [add, list, switchCmd, remove, rename],
});
