import { context } from '../common.js';
import { defineCommand, defineGroup } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows } from '../ui/format.js';
import { printToken } from '../ui/token.js';

/**
 * `tslxc config trust add|list|remove`: who may use the HTTPS API (`tslxc serve --listen`). `add`
 * prints a one-time token in LXD's format for `lxc remote add NAME TOKEN` (or `--password=TOKEN`).
 */

const add = defineCommand({
  command: 'add <name>',
  describe: 'Make a one-time token that trusts the client which uses it (printed on the last line)',
  positionals: { name: { kind: 'text', describe: "the client's name in the trust store" } },
  options: {
    instances: { type: 'string', describe: 'restrict the client to instances whose names match this glob ("alice-*")' },
    type: { type: 'string', default: 'client', choices: ['client', 'metrics'], describe: 'metrics: the client may read /1.0/metrics and nothing else' },
    expires: { type: 'string', default: '1d', describe: 'how long the token works: 30m, 12h, 7d' },
  },
  run: async (argv) => {
    const { parseDuration } = await import('../../util/units.js');
    const { issueToken } = await import('../../api/trust.js');
    const expiresMs = parseDuration(String(argv.expires), { key: '--expires' });
    const r = await issueToken(context().paths, {
      name: String(argv.name),
      instances: argv.instances === undefined ? undefined : String(argv.instances),
      type: argv.type === 'metrics' ? 'metrics' : 'client',
      expiresMs,
    });
    printToken(r, String(argv.name));
  },
});

const list = defineCommand({
  command: 'list',
  aliases: ['ls'],
  describe: 'List trusted client certificates, pending tokens and dashboard sessions',
  positionals: {},
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const { loadTrust } = await import('../../api/trust.js');
    const store = loadTrust(context().paths);
    const t = Date.now();
    const rows = [
      ...store.certificates.map((c) => ({
        name: c.name,
        type: c.type,
        fingerprint: c.fingerprint.slice(0, 12),
        instances: c.lab ? `lab ${c.lab.lab} member ${c.lab.member}` : c.restricted ? (c.instances ?? '') : '(all)',
        expires: c.expires_at ?? '',
      })),
      ...store.tokens
        .filter((k) => Date.parse(k.expires_at) > t)
        .map((k) => ({
          name: k.name,
          type: k.type === 'metrics' ? 'token (metrics)' : 'token',
          fingerprint: '',
          instances: k.lab ? `lab ${k.lab.lab} member ${k.lab.member}` : (k.instances ?? '(all)'),
          expires: k.expires_at,
        })),
      ...store.sessions
        .filter((x) => Date.parse(x.expires_at) > t)
        .map((x) => ({
          name: x.name,
          type: 'session',
          fingerprint: '',
          instances: x.lab ? `lab ${x.lab.lab} member ${x.lab.member}` : x.restricted ? (x.instances ?? '') : '(all)',
          expires: x.expires_at,
        })),
    ];
    console.log(
      renderRows(
        rows,
        [
          { header: 'NAME', value: (r) => r.name },
          { header: 'TYPE', value: (r) => r.type },
          { header: 'FINGERPRINT', value: (r) => r.fingerprint },
          { header: 'INSTANCES', value: (r) => r.instances },
          { header: 'EXPIRES', value: (r) => r.expires },
        ],
        argv.format as Format,
      ),
    );
  },
});

const remove = defineCommand({
  command: 'remove <which>',
  aliases: ['rm'],
  describe: 'Remove a trusted certificate (by name or fingerprint), a pending token or a dashboard session (by name)',
  positionals: { which: { kind: 'text', describe: 'name or fingerprint' } },
  run: async (argv) => {
    const { removeTrusted } = await import('../../api/trust.js');
    const r = await removeTrusted(context().paths, String(argv.which));
    console.log(`${r.kind === 'token' ? 'Token' : r.kind === 'session' ? 'Dashboard session' : 'Certificate'} ${r.name} removed`);
  },
});

export default defineGroup({
  command: 'trust <command>',
  describe: 'Who may use the HTTPS API (tslxc serve --listen)',
  subcommands: [add, list, remove],
});
