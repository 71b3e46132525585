import fs from 'node:fs';
import { context, exitAfterCommand } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows } from '../ui/format.js';

/**
 * `tslxc gateway`: the SSH gateway in the foreground, and `gateway user add|remove|list`, which
 * say whose keys reach which containers (STATE/gateway/users.yaml, re-read at every login).
 */

const serve = defineCommand({
  command: '$0',
  describe: 'Run the SSH gateway in the foreground (logs to stderr; SIGTERM ends it)',
  positionals: {},
  options: {
    listen: { type: 'string', default: '0.0.0.0:2222', describe: 'ADDRESS:PORT to listen on (port 0: any free port)' },
    'ban-after': { type: 'number', default: 10, describe: 'failed logins from one address before it is refused' },
    'ban-time': { type: 'number', default: 600, describe: 'seconds a refused address stays refused' },
  },
  run: async (argv) => {
    const { TslxcError } = await import('../../errors.js');
    const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(String(argv.listen));
    if (!m || Number(m[2]) > 65535) throw new TslxcError(`Invalid --listen "${String(argv.listen)}"`, 'expected ADDRESS:PORT', 'e.g. --listen 0.0.0.0:2222');
    const banAfter = Number(argv['ban-after']);
    const banTime = Number(argv['ban-time']);
    if (!Number.isInteger(banAfter) || banAfter < 1) throw new TslxcError(`Invalid --ban-after "${String(argv['ban-after'])}"`, 'expected a whole number ≥ 1');
    if (!(banTime >= 0)) throw new TslxcError(`Invalid --ban-time "${String(argv['ban-time'])}"`, 'expected seconds ≥ 0');
    const { startGateway } = await import('../../gateway/server.js');
    const info = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const gw = await startGateway(context(), {
      host: m[1],
      port: Number(m[2]),
      throttle: { banAfter, banMs: banTime * 1000, delayAfter: Math.min(3, banAfter - 1) },
      info,
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES') {
        throw new TslxcError(
          `Cannot listen on ${String(argv.listen)}`,
          err.code === 'EADDRINUSE' ? 'the port is in use' : err.message,
          'pick another --listen',
        );
      }
      throw err;
    });
    info(`gateway listening on ${gw.address.host}:${gw.address.port}, host key ${gw.fingerprint}`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => () => {
        info(`${sig}: closing (sessions get SIGHUP)`);
        void gw.close().then(resolve);
      };
      process.once('SIGTERM', stop('SIGTERM'));
      process.once('SIGINT', stop('SIGINT'));
    });
    info('gateway stopped');
    // What is still open (a client that does not close its side) must not keep the process up.
    exitAfterCommand(2000);
  },
});

const userAdd = defineCommand({
  command: 'add <name>',
  describe: 'Let a user reach containers with their public keys',
  positionals: { name: { kind: 'text', describe: 'the SSH login name' } },
  options: {
    key: { type: 'string', multiple: true, kind: 'path', describe: 'a public key file (OpenSSH .pub or authorized_keys lines); repeatable' },
    'key-line': { type: 'string', multiple: true, describe: 'a public key line, "ssh-ed25519 AAAA... comment"; repeatable' },
    container: {
      type: 'string',
      short: 'c',
      multiple: true,
      required: true,
      kind: 'container',
      describe: 'a container the user may enter (the first is the default); repeatable',
    },
    replace: { type: 'boolean', describe: 'replace a user of that name' },
  },
  run: async (argv) => {
    const { TslxcError } = await import('../../errors.js');
    const { addGatewayUser } = await import('../../gateway/manage.js');
    const keyLines: Array<{ line: string; from: string }> = [];
    for (const file of (argv.key as string[] | undefined) ?? []) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new TslxcError(`Cannot read the key file ${file}`, (err as Error).message, 'give the path of a .pub file');
      }
      for (const l of text.split('\n')) if (l.trim() && !l.trim().startsWith('#')) keyLines.push({ line: l.trim(), from: file });
    }
    for (const l of (argv['key-line'] as string[] | undefined) ?? []) keyLines.push({ line: String(l).trim(), from: '--key-line' });
    const user = await addGatewayUser(context(), String(argv.name), keyLines, ((argv.container as string[]) ?? []).map(String), { replace: !!argv.replace });
    console.log(`Gateway user ${user.name} added: ${user.keys.length} key(s), container(s) ${user.containers.join(', ')}`);
  },
});

const userRemove = defineCommand({
  command: 'remove <name>',
  aliases: ['rm'],
  describe: 'Remove a gateway user (open sessions go on; new ones are refused)',
  positionals: { name: { kind: 'gateway user' } },
  run: async (argv) => {
    const { TslxcError } = await import('../../errors.js');
    const { removeGatewayUser, validateGatewayUserName } = await import('../../gateway/users.js');
    const name = validateGatewayUserName(String(argv.name));
    if (!(await removeGatewayUser(context().paths, name)))
      throw new TslxcError(`Gateway user "${name}" not found`, undefined, '"tslxc gateway user list" shows them');
    console.log(`Gateway user ${name} removed`);
  },
});

const userList = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List gateway users, their containers and keys',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { describeGatewayUsers } = await import('../../gateway/manage.js');
    const rows = describeGatewayUsers(context());
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'CONTAINERS', value: (r) => r.containers.join(',') },
          { header: 'KEYS', value: (r) => r.fingerprints.join(' ') },
          { header: 'LAB', value: (r) => r.lab ?? '' },
          { header: 'LOGIN', value: (r) => r.containers.map((c, i) => (i === 0 ? r.name : `${r.name}+${c}`)).join(' ') },
        ],
        argv.format as Format,
      ),
    );
  },
});

const user = defineGroup({
  command: 'user <command>',
  describe: 'Who may reach which containers through the gateway',
  subcommands: [userAdd, userRemove, userList],
});

export default defineGroup({
  command: 'gateway',
  describe: 'An SSH gateway into containers (no sshd needed inside), and its users',
  subcommands: [serve, user],
});
