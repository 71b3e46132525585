import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseLab, readLabFile } from '../../../lib/lab/schema.js';
import { LabFileError } from '../../../lib/lab/source.js';
import { desiredContainers, drift, LAB_KEY, MEMBER_KEY } from '../../../lib/lab/plan.js';
import type { InstanceConfig } from '../../../lib/state/config.js';
import { ed25519KeyPair } from '../../../lib/ssh/keygen.js';

// Not ssh2's generator: about one Ed25519 key in 200 it makes is malformed (keygen.ts).
const key = (comment: string) => ed25519KeyPair(comment);
const k1 = key('alice@laptop');
const k2 = key('bob@laptop');

/** The error a file is refused with: its line and field, and the message is one line. */
function refused(t: import('ava').ExecutionContext, text: string, line: number, field: string, why: RegExp): void {
  const err = t.throws(() => parseLab(text, 'lab.yaml'), { instanceOf: LabFileError }) as LabFileError;
  t.is(err.line, line, err.message);
  t.is(err.field, field, err.message);
  t.regex(err.message, why);
  t.regex(err.message, new RegExp(`^Invalid lab file lab\\.yaml, line ${line}`));
  t.false(err.message.includes('\n'));
}

test('a full lab file: defaults, per-member overrides, naming, volumes, keys', (t) => {
  const spec = parseLab(
    `name: intro
network:
  name: labbr1
  ipv4.address: 10.42.0.1/24
  ipv4.nat: false
gateway: {port: 2200, host: lab.example.org}
defaults:
  image: busybox
  profiles: [default]
  config: {limits.memory: 256MiB, limits.processes: 100}
volumes:
  - {name: course, path: /srv/course, readonly: true}
  - {name: work, path: /srv/work, scope: member}
members:
  - name: alice
    keys: ["${k1.public}"]
  - name: bob
    keys: "${k2.public}"
    count: 3
    config: {limits.memory: 512MiB}
  - name: carol
    count: 2
    naming: "{lab}-{member}{n}"
`,
    'lab.yaml',
  );
  t.is(spec.name, 'intro');
  t.deepEqual(spec.network, { ...spec.network, name: 'labbr1', config: { 'ipv4.address': '10.42.0.1/24', 'ipv4.nat': 'false' } });
  t.deepEqual(spec.gateway, { port: 2200, host: 'lab.example.org' });
  t.deepEqual(
    spec.members.map((m) => m.containers.map((c) => c.name)),
    [['alice'], ['bob-1', 'bob-2', 'bob-3'], ['intro-carol1', 'intro-carol2']],
  );
  t.is(spec.members[0].keys[0].type, 'ssh-ed25519');
  t.regex(spec.members[0].keys[0].fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.is(spec.members[0].keys[0].comment, 'alice@laptop');
  t.deepEqual(spec.members[1].config, { 'limits.memory': '512MiB', 'limits.processes': '100' });
  t.deepEqual(spec.members[2].config, { 'limits.memory': '256MiB', 'limits.processes': '100' });

  const want = desiredContainers(spec);
  const bob2 = want.find((w) => w.name === 'bob-2')!;
  t.is(bob2.config[LAB_KEY], 'intro');
  t.is(bob2.config[MEMBER_KEY], 'bob');
  t.deepEqual(bob2.devices.eth0, { type: 'nic', network: 'labbr1', name: 'eth0' });
  t.deepEqual(bob2.devices['vol-course'], { type: 'disk', pool: 'default', source: 'intro-course', path: '/srv/course', readonly: 'true' });
  t.deepEqual(bob2.devices['vol-work'], { type: 'disk', pool: 'default', source: 'intro-bob-work', path: '/srv/work' });
});

test('defaults: busybox, the default profile, one container named after the member, a network named after the lab', (t) => {
  const spec = parseLab('name: l1\nmembers:\n  - name: m1\n', 'lab.yaml');
  t.is(spec.network.name, 'lab-l1');
  t.deepEqual(spec.network.config, { 'ipv4.address': 'auto', 'ipv4.nat': 'true' });
  t.is(spec.gateway.port, 2222);
  t.is(spec.members[0].image, 'busybox');
  t.deepEqual(spec.members[0].profiles, ['default']);
  t.deepEqual(
    spec.members[0].containers.map((c) => c.name),
    ['m1'],
  );
});

test('key_files are read relative to the lab file, one key per line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-unit-lab-'));
  try {
    fs.mkdirSync(path.join(dir, 'keys'));
    fs.writeFileSync(path.join(dir, 'keys', 'a.pub'), `# alice's keys\n${k1.public}\n\n${k2.public}\n`);
    fs.writeFileSync(path.join(dir, 'lab.yaml'), 'name: l1\nmembers:\n  - name: alice\n    key_files: [keys/a.pub]\n');
    const spec = readLabFile(path.join(dir, 'lab.yaml'));
    t.deepEqual(
      spec.members[0].keys.map((k) => k.comment),
      ['alice@laptop', 'bob@laptop'],
    );
    fs.writeFileSync(path.join(dir, 'lab.yaml'), 'name: l1\nmembers:\n  - name: alice\n    key_files:\n      - keys/missing.pub\n');
    const err = t.throws(() => readLabFile(path.join(dir, 'lab.yaml')), { instanceOf: LabFileError }) as LabFileError;
    t.is(err.line, 5);
    t.regex(err.message, /no such file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown keys are refused at their line, at every level', (t) => {
  refused(t, 'name: l1\nmember: []\n', 2, 'member', /unknown key "member"/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    image: busybox\n    cont: 2\n', 5, 'members[0].cont', /unknown key "cont"/);
  refused(t, 'name: l1\ngateway:\n  port: 22\n  listen: x\nmembers: [{name: a}]\n', 4, 'gateway.listen', /unknown key/);
  refused(t, 'name: l1\nvolumes:\n  - name: v\n    path: /v\n    size: 1GiB\nmembers: [{name: a}]\n', 5, 'volumes[0].size', /unknown key/);
  refused(t, 'name: l1\nnetwork:\n  name: br1\n  ipv4.bogus: 1\nmembers: [{name: a}]\n', 4, 'network.ipv4.bogus', /ipv4\.bogus/);
});

test('duplicate members, duplicate keys and a key shared by two members are refused', (t) => {
  refused(t, 'name: l1\nmembers:\n  - name: a\n  - name: b\n  - name: a\n', 5, 'members[2].name', /member "a" is declared twice/);
  refused(
    t,
    `name: l1\nmembers:\n  - name: a\n    keys: ["${k1.public}"]\n  - name: b\n    keys: ["${k1.public}"]\n`,
    5,
    'members[1]',
    /given to members "a" and "b"/,
  );
  refused(t, 'name: l1\nname: l2\nmembers: []\n', 2, '', /given twice/);
});

test('bad and private keys are refused with their line', (t) => {
  refused(t, 'name: l1\nmembers:\n  - name: a\n    keys:\n      - ssh-ed25519 AAAAnotakey a@b\n', 5, 'members[0].keys[0]', /not an OpenSSH public key/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    keys:\n      - hello\n', 5, 'members[0].keys[0]', /not an OpenSSH public key/);
  const priv = JSON.stringify(k1.private);
  refused(t, `name: l1\nmembers:\n  - name: a\n    keys:\n      - ${priv}\n`, 5, 'members[0].keys[0]', /private key/);
});

test('bad names are refused', (t) => {
  refused(t, 'name: Intro\nmembers: [{name: a}]\n', 1, 'name', /invalid lab name/);
  refused(t, 'name: l1\nmembers:\n  - name: Alice\n', 3, 'members[0].name', /Invalid/);
  refused(t, 'name: l1\nmembers:\n  - name: a_b\n', 3, 'members[0].name', /Invalid container name/);
  refused(t, 'name: l1\nnetwork: {name: this-is-far-too-long}\nmembers: [{name: a}]\n', 2, 'network.name', /Invalid network name/);
  refused(t, 'name: a-very-long-lab-name\nmembers: [{name: a}]\n', 1, '', /give network.name/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    profiles: ["../x"]\n', 4, 'members[0].profiles[0]', /profile/i);
});

test('naming patterns that give invalid or colliding names are refused', (t) => {
  refused(t, 'name: l1\ndefaults:\n  naming: box\nmembers:\n  - name: a\n  - name: b\n', 3, 'defaults.naming', /gives "box" twice \(members "a" and "b"\)/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    count: 2\n    naming: "{member}"\n', 5, 'members[0].naming', /gives "a" twice/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    naming: "{member}_x"\n', 4, 'members[0].naming', /Invalid container name "a_x"/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    naming: "{user}"\n', 4, 'members[0].naming', /unknown placeholder \{user\}/);
  refused(t, 'name: l1\nmembers:\n  - name: a-1\n  - name: a\n    count: 2\n', 4, 'members[1]', /gives "a-1" twice \(members "a-1" and "a"\)/);
});

test('values of the wrong type, counts out of range, bad volumes', (t) => {
  refused(t, 'name: l1\nmembers:\n  - name: a\n    count: 0\n', 4, 'members[0].count', /whole number from 1 to 64/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n    count: many\n', 4, 'members[0].count', /whole number/);
  refused(t, 'name: l1\ngateway: {port: 70000}\nmembers: [{name: a}]\n', 2, 'gateway.port', /1 to 65535/);
  refused(t, 'name: l1\nmembers: {a: 1}\n', 2, 'members', /expected a list/);
  refused(t, 'name: l1\nmembers: []\n', 2, 'members', /at least one member/);
  refused(t, 'name: l1\n', 1, '', /"members" is required/);
  refused(t, 'name: l1\nvolumes:\n  - {name: v, path: relative}\nmembers: [{name: a}]\n', 3, 'volumes[0].path', /absolute path/);
  refused(
    t,
    'name: l1\nvolumes:\n  - {name: v, path: /a}\n  - {name: w, path: /a/}\nmembers: [{name: a}]\n',
    4,
    'volumes[1].path',
    /two volumes are mounted at \/a/,
  );
  refused(t, 'name: l1\nvolumes:\n  - {name: v, path: /a, scope: team}\nmembers: [{name: a}]\n', 3, 'volumes[0].scope', /"shared".*"member"/);
  refused(t, 'name: l1\ndefaults:\n  config:\n    user.lab: other\nmembers: [{name: a}]\n', 4, 'defaults.config.user.lab', /set by tslxc/);
  refused(t, 'name: l1\nmembers:\n  - name: a\n  bad: [\n', 4, '', /not valid YAML/);
});

test('drift names what differs from the file and ignores volatile keys', (t) => {
  const spec = parseLab('name: l1\nnetwork: {name: br1}\nmembers:\n  - name: a\n    config: {limits.memory: 256MiB}\n', 'lab.yaml');
  const [w] = desiredContainers(spec);
  const cfg = {
    name: 'a',
    profiles: ['default'],
    config: { ...w.config, 'volatile.eth0.hwaddr': '00:16:3e:00:00:01' },
    devices: structuredClone(w.devices),
  } as unknown as InstanceConfig;
  t.deepEqual(drift(cfg, w), []);
  t.deepEqual(drift({ ...cfg, config: { ...cfg.config, 'limits.memory': '1GiB' } }, w), ['config']);
  t.deepEqual(drift({ ...cfg, profiles: ['default', 'lab'] }, w), ['profiles']);
  t.deepEqual(drift({ ...cfg, devices: {} }, w), ['devices']);
});
