import { TslxcError } from '../../errors.js';
import { context } from '../common.js';
import { defineCommand, defineGroup, type OptionDef, type PositionalDef } from '../define.js';
import { FORMAT_OPTION, type Format } from '../options/format.js';
import { renderRows, renderValue, table } from '../ui/format.js';
import { labProgress } from '../ui/lab-progress.js';
import { printToken } from '../ui/token.js';

/** tslxc lab up|status|down|reset|members|token FILE: declarative labs (lib/lab). */

const FILE: PositionalDef = { kind: 'path', describe: 'the lab file (YAML; see labs/example.yaml)' };
const PARALLEL: OptionDef = { type: 'number', default: 4, describe: 'containers handled at once' };

async function spec(argv: Record<string, unknown>) {
  const { readLabFile } = await import('../../lab/schema.js');
  return readLabFile(String(argv.file));
}

function parallelOf(argv: Record<string, unknown>): number {
  const n = Number(argv.parallel);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new TslxcError(`Invalid --parallel "${String(argv.parallel)}"`, 'expected a whole number from 1 to 64');
  return n;
}

function printReport(r: { changes: string[]; notes: string[]; failed: Array<{ what: string; error: string }> }, nothing: string): void {
  for (const c of r.changes) console.log(c);
  if (!r.changes.length && !r.failed.length) console.log(nothing);
  for (const n of r.notes) console.log(`note: ${n}`);
  for (const f of r.failed) process.stderr.write(`failed: ${f.what}: ${f.error}\n`);
}

const up = defineCommand({
  command: 'up <file>',
  describe: 'Create or complete a lab: network, volumes, containers (with start snapshots), gateway users',
  positionals: { file: FILE },
  options: { parallel: PARALLEL, prune: { type: 'boolean', describe: "delete the lab's containers the file no longer lists" } },
  run: async (argv) => {
    const s = await spec(argv);
    const { labUp } = await import('../../lab/up.js');
    const progress = labProgress(s.members.reduce((n, m) => n + m.containers.length, 0));
    let r;
    try {
      r = await labUp(context(), s, { parallel: parallelOf(argv), prune: !!argv.prune, onEvent: progress.event });
    } finally {
      progress.done();
    }
    // Access follows the file: a member it no longer lists loses their certificates and tokens.
    const { revokeLabMembers } = await import('../../api/trust.js');
    const revoked = await revokeLabMembers(
      context().paths,
      s.name,
      s.members.map((m) => m.name),
    );
    r.changes.push(...revoked.map((n) => `revoked ${n} (member no longer in the file)`));
    printReport(r, `lab ${s.name} is up to date (${r.unchanged.length} containers running)`);
    if (r.failed.length) {
      throw new TslxcError(
        `Lab "${s.name}" is not complete`,
        `${r.failed.length} of ${s.members.reduce((n, m) => n + m.containers.length, 0)} failed (${r.failed[0].what}: ${r.failed[0].error})`,
        `what was made is kept; fix the cause and run "tslxc lab up ${String(argv.file)}" again`,
      );
    }
    console.log(`lab ${s.name} up in ${r.seconds.toFixed(1)}s`);
  },
});

const status = defineCommand({
  command: 'status <file>',
  describe: "Each member's containers: state, address, how to connect",
  positionals: { file: FILE },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const s = await spec(argv);
    const { labStatus } = await import('../../lab/status.js');
    const { labTrust } = await import('../../api/trust.js');
    const st = await labStatus(context(), s);
    const trust = labTrust(context().paths, s.name);
    const trusted = (member: string) => (trust.get(member)?.certificates ?? 0) + (trust.get(member)?.sessions ?? 0) > 0;
    const rows = st.containers.map((c) => ({ ...c, trusted: trusted(c.member) }));
    const format = argv.format as Format;
    if (format === 'json' || format === 'yaml') {
      console.log(renderValue({ ...st, containers: rows }, format));
      return;
    }
    const trustedText = (member: string) => {
      const t = trust.get(member);
      return t?.certificates ? 'yes' : t?.sessions ? 'yes (dashboard)' : t?.tokens ? 'no (token pending)' : 'no';
    };
    if (format === 'table')
      console.log(`lab ${st.lab}: network ${st.network.name} (${st.network.ipv4 ?? 'no address'}, ${st.network.state}), gateway port ${st.gateway.port}\n`);
    console.log(
      renderRows(
        rows,
        [
          { header: 'MEMBER', value: (r) => r.member },
          { header: 'CONTAINER', value: (r) => r.container },
          { header: 'STATE', value: (r) => r.state },
          { header: 'IPV4', value: (r) => r.ipv4.join(' ') },
          { header: 'CONNECT', value: (r) => r.connect },
          { header: 'TRUSTED', value: (r) => trustedText(r.member) },
        ],
        format,
      ),
    );
  },
});

const down = defineCommand({
  command: 'down <file>',
  describe: "Remove the lab's containers, gateway users and network (volumes stay unless --volumes)",
  positionals: { file: FILE },
  options: { parallel: PARALLEL, volumes: { type: 'boolean', describe: "delete the lab's volumes too" } },
  run: async (argv) => {
    const s = await spec(argv);
    const { labDown } = await import('../../lab/down.js');
    const progress = labProgress(0);
    let r;
    try {
      r = await labDown(context(), s, { volumes: !!argv.volumes, parallel: parallelOf(argv), onEvent: progress.event });
    } finally {
      progress.done();
    }
    const { revokeLabMembers } = await import('../../api/trust.js');
    for (const n of await revokeLabMembers(context().paths, s.name)) r.changes.push(`revoked ${n}`);
    printReport(r, `lab ${s.name} has nothing on this host`);
    if (r.failed.length)
      throw new TslxcError(`Lab "${s.name}" is not completely down`, `${r.failed[0].what}: ${r.failed[0].error}`, 'fix the cause and run "lab down" again');
  },
});

const reset = defineCommand({
  command: 'reset <file> [members...]',
  describe: "Restore members' containers to their start state (stop, restore the start snapshot, start); REMOTE:[LAB] resets your own over a remote",
  positionals: {
    file: { kind: 'path', describe: 'the lab file, or REMOTE:[LAB] (a tslxc server added with "tslxc remote add")' },
    members: { kind: 'lab member' },
  },
  options: { parallel: PARALLEL },
  run: async (argv) => {
    const members = ((argv.members as string[] | undefined) ?? []).map(String);
    const remote = /^([a-z0-9][a-z0-9-]{0,62}):([a-z][a-z0-9-]{0,31})?$/.exec(String(argv.file));
    if (remote) {
      const { loadClientConfig } = await import('../../client/config.js');
      if (loadClientConfig().remotes[remote[1]!]) {
        await remoteReset(remote[1]!, remote[2], members);
        return;
      }
    }
    const s = await spec(argv);
    const { labReset } = await import('../../lab/reset.js');
    const res = await labReset(context(), s, members, { parallel: parallelOf(argv) });
    for (const r of res) {
      if (r.error) process.stderr.write(`failed: ${r.container}: ${r.error}\n`);
      else console.log(`reset ${r.container} in ${r.seconds!.toFixed(1)}s`);
    }
    const bad = res.filter((r) => r.error);
    if (bad.length) throw new TslxcError(`Cannot reset ${bad.map((b) => b.container).join(', ')}`, bad[0].error);
  },
});

/**
 * `lab reset REMOTE:[LAB] [MEMBER...]` through the server's lab API: a member's token shows them
 * their own lab and member only, so neither needs naming then.
 */
async function remoteReset(remote: string, lab: string | undefined, members: string[]): Promise<void> {
  const { RemoteServer } = await import('../../client/connection.js');
  const server = RemoteServer.open(remote);
  try {
    const labs = await server.get<Array<{ name: string; members: Array<{ name: string; instances: Array<{ name: string }> }> }>>('/1.0/labs?recursion=1');
    const chosen = lab ? labs.find((l) => l.name === lab) : labs.length === 1 ? labs[0] : undefined;
    if (!chosen) {
      if (lab)
        throw new TslxcError(
          `No lab "${lab}" on remote "${remote}"`,
          'it is not up there, or your certificate belongs to none of its members',
          `see "tslxc lab reset ${remote}:" with one of: ${labs.map((l) => l.name).join(', ') || '(none)'}`,
        );
      throw new TslxcError(
        labs.length ? `Remote "${remote}" has ${labs.length} labs` : `Remote "${remote}" shows no lab`,
        labs.length ? undefined : 'none is up there, or your certificate belongs to no member',
        labs.length ? `name one: tslxc lab reset ${remote}:${labs[0]!.name} MEMBER` : undefined,
      );
    }
    const targets = members.length ? members : chosen.members.length === 1 ? [chosen.members[0]!.name] : [];
    if (!targets.length)
      throw new TslxcError('Give the members to reset', undefined, `e.g. "tslxc lab reset ${remote}:${chosen.name} ${chosen.members[0]?.name ?? 'MEMBER'}"`);
    for (const m of targets) {
      if (!chosen.members.some((x) => x.name === m))
        throw new TslxcError(
          `Member "${m}" is not in lab "${chosen.name}" on remote "${remote}"`,
          undefined,
          `its members you may see: ${chosen.members.map((x) => x.name).join(', ')}`,
        );
    }
    for (const m of targets) {
      const t0 = Date.now();
      await server.run('POST', `/1.0/labs/${encodeURIComponent(chosen.name)}/members/${encodeURIComponent(m)}/reset`);
      const boxes = chosen.members.find((x) => x.name === m)!.instances.map((i) => i.name);
      console.log(`reset ${boxes.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
  } finally {
    server.close();
  }
}

const token = defineCommand({
  command: 'token <file> <member>',
  describe: "Make a one-time token that trusts the client which uses it with the member's containers only (printed on the last line)",
  positionals: { file: FILE, member: { kind: 'lab member', describe: 'the member, as the lab file names them' } },
  options: { expires: { type: 'string', default: '1d', describe: 'how long the token works: 30m, 12h, 7d' } },
  run: async (argv) => {
    const s = await spec(argv);
    const member = String(argv.member);
    if (!s.members.some((m) => m.name === member))
      throw new TslxcError(`Member "${member}" is not in lab "${s.name}"`, undefined, `see "tslxc lab members ${String(argv.file)}"`);
    const { parseDuration } = await import('../../util/units.js');
    const { issueToken } = await import('../../api/trust.js');
    const { readLabRecord } = await import('../../lab/record.js');
    const expiresMs = parseDuration(String(argv.expires), { key: '--expires' });
    if (!readLabRecord(context().paths, s.name))
      process.stderr.write(`Note: lab ${s.name} is not up: the token's client sees no container until "tslxc lab up ${String(argv.file)}"\n`);
    const r = await issueToken(context().paths, { name: `${member}@${s.name}`, lab: { lab: s.name, member }, expiresMs });
    printToken(r, r.name);
  },
});

const members = defineCommand({
  command: 'members <file>',
  describe: "The lab's members, their containers and keys",
  positionals: { file: FILE },
  options: { format: FORMAT_OPTION },
  run: async (argv) => {
    const s = await spec(argv);
    const { labMembers } = await import('../../lab/status.js');
    const rows = labMembers(s);
    const format = argv.format as Format;
    if (format === 'json' || format === 'yaml') {
      console.log(renderValue(rows, format));
      return;
    }
    const flat = rows.flatMap((m) =>
      (m.keys.length ? m.keys : [undefined]).map((k, i) => [
        i ? '' : m.member,
        i ? '' : m.containers.join(' '),
        k ? `${k.type} ${k.fingerprint}` : '(no key)',
        k?.comment ?? '',
      ]),
    );
    if (format === 'csv')
      console.log(
        renderRows(
          flat,
          ['MEMBER', 'CONTAINERS', 'KEY', 'COMMENT'].map((h, i) => ({ header: h, value: (r: string[]) => r[i] })),
          'csv',
        ),
      );
    else console.log(table(['MEMBER', 'CONTAINERS', 'KEY', 'COMMENT'], flat));
  },
});

export default defineGroup({
  command: 'lab <command>',
  describe: 'Declarative labs: members, their containers and keys, from one YAML file',
  subcommands: [up, status, down, reset, members, token],
  missingCommand: 'Give a lab command: up, status, down, reset, members or token.',
});
