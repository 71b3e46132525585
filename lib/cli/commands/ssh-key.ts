import fs from 'node:fs';
import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup, type OptionDef } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows } from '../ui/format.js';

const userOption: OptionDef = { type: 'string', kind: 'user', default: 'root', describe: 'the user in the container' };

const add = defineCommand({
  command: 'add <name> <file>',
  describe: "Authorize public keys (an OpenSSH .pub file, - for stdin) for a user's logins to a container",
  positionals: { name: { kind: 'container' }, file: { kind: 'path' } },
  options: { user: userOption },
  run: async (argv) => {
    const { utils } = (await import('ssh2')).default;
    const { parsePublicKeys } = await import('../../ssh/pubkey.js');
    const { addAuthorizedKeys } = await import('../../ssh/authorized.js');
    const file = String(argv.file);
    let text: string;
    try {
      text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new TslxcError(`Cannot read ${file}`, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
    }
    const keys = parsePublicKeys(text, file === '-' ? 'stdin' : file, utils.parseKey);
    const added = await addAuthorizedKeys(context(), String(argv.name), String(argv.user), keys);
    for (const k of keys) {
      const isNew = added.includes(k);
      console.log(`${isNew ? 'Added' : 'Already there'}: ${k.type} ${k.fingerprint}${k.comment ? ` ${k.comment}` : ''}`);
    }
  },
});

const list = defineCommand({
  command: 'list <name>',
  aliases: ['ls'],
  describe: "The keys in a user's authorized_keys in a container",
  positionals: { name: { kind: 'container' } },
  options: { user: userOption, format: FORMAT_OPTION },
  run: async (argv) => {
    const { listAuthorizedKeys } = await import('../../ssh/authorized.js');
    const keys = await listAuthorizedKeys(context(), String(argv.name), String(argv.user));
    console.log(
      renderRows(
        keys,
        [
          { header: 'TYPE', value: (k) => k.type },
          { header: 'FINGERPRINT', value: (k) => k.fingerprint },
          { header: 'COMMENT', value: (k) => k.comment },
        ],
        argv.format as Format,
      ),
    );
  },
});

const remove = defineCommand({
  command: 'remove <name> <key>',
  aliases: ['rm'],
  describe: "Remove keys from a user's authorized_keys (by fingerprint, comment, or the key itself)",
  positionals: { name: { kind: 'container' }, key: { kind: 'ssh key' } },
  options: { user: userOption },
  run: async (argv) => {
    const { removeAuthorizedKeys } = await import('../../ssh/authorized.js');
    for (const k of await removeAuthorizedKeys(context(), String(argv.name), String(argv.user), String(argv.key))) {
      console.log(`Removed: ${k.type} ${k.fingerprint}${k.comment ? ` ${k.comment}` : ''}`);
    }
  },
});

const own = defineCommand({
  command: 'own',
  describe: "tslxc's own public key (made on first use), or with --path its private key file",
  positionals: {},
  options: { path: { type: 'boolean', describe: 'print the private key file instead (for ssh -i)' } },
  run: async (argv) => {
    const { ensureKeypair } = await import('../../ssh/keys.js');
    const pair = await ensureKeypair(context().paths);
    console.log(argv.path ? pair.privateKeyFile : pair.publicKey);
  },
});

export default defineGroup({
  command: 'ssh-key <command>',
  describe: "SSH keys authorized in containers, and tslxc's own key",
  subcommands: [add, list, remove, own],
});
