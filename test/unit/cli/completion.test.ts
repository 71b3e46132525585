import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { complete, completionSpec, nativeCompletionTable, stateNames, type NameSource } from '../../../lib/cli/complete.js';
import { VERBS } from '../../../lib/cli/index.js';
import { SCRIPTS } from '../../../lib/cli/commands/completion.js';
import { isGroup, verbOf } from '../../../lib/cli/define.js';
import { cliPath, launcherPath, repoRoot } from '../../helpers/env.js';
import { selfRef } from '../../../lib/util/proc.js';

const spec = completionSpec(VERBS);

/** Names by kind, as a state dir would give them. */
const fake: NameSource = {
  names(kind, context) {
    const table: Record<string, string[]> = {
      container: ['alpha', 'beta', 'web1'],
      'running container': ['alpha', 'web1'],
      'stopped container': ['beta'],
      image: ['debian', 'busybox', '0123456789ab'],
      profile: ['default', 'small', 'mine'],
      network: ['tslxcbr0', 'lab0'],
      pool: ['default', 'fast'],
      remote: ['images', 'mirror'],
    };
    if (kind === 'snapshot') return context.container === 'alpha' ? ['snap0', 'snap1'] : [];
    if (kind === 'device') return context.container === 'alpha' ? ['eth0', 'data'] : context.profile === 'small' ? ['root'] : [];
    if (kind === 'config key') return context.container === 'alpha' ? ['limits.memory'] : context.network === 'lab0' ? ['ipv4.address'] : [];
    return table[kind] ?? [];
  },
};
const words = (line: string) => complete(spec, line.split(' '), fake).words;

test('the verbs offered are those of VERBS, hidden ones left out', (t) => {
  const expected = VERBS.filter((v) => v.describe !== false)
    .map(verbOf)
    .sort();
  t.deepEqual(words(''), expected);
  t.deepEqual(words('sn'), ['snapshot']);
  // Every subcommand of a group, from the group's definition.
  const snapshot = VERBS.find((v) => verbOf(v) === 'snapshot')!;
  t.true(isGroup(snapshot));
  if (isGroup(snapshot)) t.deepEqual(words('snapshot '), snapshot.subcommands.map(verbOf).sort());
  // An alias walks like its verb.
  t.deepEqual(words('rm al'), ['alpha']);
});

test('containers: all, only the stopped ones for start, only the running ones for stop', (t) => {
  t.deepEqual(words('info '), ['alpha', 'beta', 'web1']);
  t.deepEqual(words('start '), ['beta']);
  t.deepEqual(words('stop '), ['alpha', 'web1']);
  t.deepEqual(words('exec w'), ['web1']);
  // A variadic positional offers each name once.
  t.deepEqual(words('delete alpha '), ['beta', 'web1']);
  // After exec's `--` comes the command: nothing to offer.
  t.deepEqual(words('exec alpha -- '), []);
});

test('snapshots: after NAME/ and as the positional after the container', (t) => {
  t.deepEqual(words('copy alpha/'), ['alpha/snap0', 'alpha/snap1']);
  t.deepEqual(words('copy alpha/snap1'), ['alpha/snap1']);
  t.deepEqual(words('snapshot restore alpha '), ['snap0', 'snap1']);
  t.deepEqual(words('snapshot delete beta '), []);
});

test('images, profiles, networks, pools, remotes, in positionals and option values', (t) => {
  t.deepEqual(words('launch '), ['0123456789ab', 'busybox', 'debian']);
  t.deepEqual(words('image export de'), ['debian']);
  t.deepEqual(words('launch debian c1 --profile '), ['default', 'mine', 'small']);
  t.deepEqual(words('launch debian c1 -p s'), ['small']);
  t.deepEqual(words('launch debian c1 --profile=s'), ['--profile=small']);
  t.deepEqual(words('profile show '), ['default', 'mine', 'small']);
  t.deepEqual(words('network show '), ['lab0', 'tslxcbr0']);
  t.deepEqual(words('storage show '), ['default', 'fast']);
  t.deepEqual(words('remote remove '), ['images', 'mirror']);
});

test('devices and config keys of the container, profile or network named before them', (t) => {
  t.deepEqual(words('config device remove alpha '), ['data', 'eth0']);
  t.deepEqual(words('config unset alpha '), ['limits.memory']);
  t.deepEqual(words('profile device remove small '), ['root']);
  t.deepEqual(words('network unset lab0 '), ['ipv4.address']);
});

test('options, with their choices, and global ones before the verb', (t) => {
  t.true(words('exec alpha --').includes('--env'));
  t.true(words('exec alpha --').includes('--help'));
  t.deepEqual(words('list --format '), ['csv', 'json', 'table', 'yaml']);
  t.deepEqual(words('--debug st'), ['start', 'stop', 'storage']);
  // An option's value is not a positional: the image comes after it.
  t.deepEqual(words('launch -p small deb'), ['debian']);
  t.deepEqual(words('nosuchverb '), []);
  t.deepEqual(complete(spec, ['file', 'push', ''], fake), { words: [], files: true });
});

test('names come from the state dirs: running from init.pid, snapshots, aliases, yaml files', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-completion-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const p = { stateDir: `${root}/state`, runDir: `${root}/run`, cacheDir: `${root}/cache`, cgroupPrefix: 'x' };
  for (const n of ['up', 'down', 'gone']) fs.mkdirSync(`${p.stateDir}/containers/${n}/snapshots`, { recursive: true });
  fs.mkdirSync(`${p.stateDir}/containers/.tmp-stray`);
  fs.mkdirSync(`${p.stateDir}/containers/up/snapshots/snap0`);
  fs.mkdirSync(`${p.stateDir}/containers/up/snapshots/.tmp-snap1-99`);
  const me = selfRef();
  fs.mkdirSync(`${p.runDir}/containers/up`, { recursive: true });
  fs.writeFileSync(`${p.runDir}/containers/up/init.pid`, `${me.pid} ${me.startTime}\n`);
  // A pid file whose process ended (its start time no longer matches) is not running.
  fs.mkdirSync(`${p.runDir}/containers/gone`, { recursive: true });
  fs.writeFileSync(`${p.runDir}/containers/gone/init.pid`, `${me.pid} ${me.startTime + 1}\n`);
  fs.mkdirSync(`${p.stateDir}/images/${'ab'.repeat(32)}`, { recursive: true });
  fs.writeFileSync(`${p.stateDir}/images/aliases.yaml`, `debian: ${'ab'.repeat(32)}\n'my-img': ${'ab'.repeat(32)}\n`);
  fs.mkdirSync(`${p.stateDir}/profiles`);
  fs.writeFileSync(`${p.stateDir}/profiles/mine.yaml`, '');
  fs.mkdirSync(`${p.stateDir}/networks`);
  fs.mkdirSync(`${p.stateDir}/storage-pools/fast/volumes`, { recursive: true });
  fs.writeFileSync(`${p.stateDir}/storage-pools/fast.yaml`, '');
  fs.writeFileSync(
    `${p.stateDir}/remotes.yaml`,
    'images:\n  url: https://images.linuxcontainers.org\n  protocol: simplestreams\nmirror:\n  url: http://m\n  protocol: simplestreams\n',
  );
  fs.writeFileSync(
    `${p.stateDir}/containers/up/config.yaml`,
    "name: up\nconfig:\n  limits.memory: 128MiB\n  volatile.eth0.hwaddr: 00:16:3e:00:00:01\n  'user.a b': x\ndevices:\n  eth0:\n    type: nic\n    network: lab0\n  data:\n    type: disk\nprofiles:\n  - default\n",
  );
  fs.writeFileSync(`${p.stateDir}/networks/lab0.yaml`, 'name: lab0\nconfig:\n  ipv4.address: 10.9.0.1/24\n  ipv4.nat: "true"\n');
  const src = stateNames(p, path.join(repoRoot, 'profiles'));
  t.deepEqual(src.names('device', { container: 'up' }), ['eth0', 'data']);
  t.deepEqual(src.names('config key', { container: 'up' }), ['limits.memory', 'user.a b']);
  t.deepEqual(src.names('config key', { network: 'lab0' }), ['ipv4.address', 'ipv4.nat']);
  t.deepEqual(src.names('device', { container: '../up' }), []);
  // A built-in profile, comments and all.
  t.deepEqual(src.names('device', { profile: 'default' }), ['root', 'eth0']);
  t.deepEqual(src.names('container', {}).sort(), ['down', 'gone', 'up']);
  t.deepEqual(src.names('running container', {}), ['up']);
  t.deepEqual(src.names('stopped container', {}).sort(), ['down', 'gone']);
  t.deepEqual(src.names('snapshot', { container: 'up' }), ['snap0']);
  t.deepEqual(src.names('snapshot', { container: '../up' }), []);
  t.deepEqual(src.names('image', {}).sort(), ['abababababab', 'debian', 'my-img']);
  t.true(src.names('profile', {}).includes('default'));
  t.true(src.names('profile', {}).includes('mine'));
  t.deepEqual(src.names('network', {}), ['lab0']);
  t.deepEqual(src.names('pool', {}).sort(), ['default', 'fast']);
  t.deepEqual(src.names('remote', {}), ['images', 'mirror']);
});

test("the helper completes a verb's first container as node does, without node", (t) => {
  const table = fs.readFileSync(path.join(repoRoot, 'dist/lib/cli/completion-first.txt'), 'utf8');
  t.is(table, nativeCompletionTable(spec), 'the build wrote the table from the grammar');
  t.regex(table, /^start\tstopped container$/m);
  t.regex(table, /^snapshot create\tcontainer$/m);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-completion-native-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const state = `${root}/state`;
  const run = `${root}/run`;
  for (const n of ['up', 'down', 'gone', 'db-1', 'db-2']) fs.mkdirSync(`${state}/containers/${n}`, { recursive: true });
  // Not containers: a stray temp dir, an invalid name, a file, a symlink to a container's dir.
  fs.mkdirSync(`${state}/containers/.tmp-stray`);
  fs.mkdirSync(`${state}/containers/Bad_Name`);
  fs.writeFileSync(`${state}/containers/file`, '');
  fs.symlinkSync(`${state}/containers/up`, `${state}/containers/link`);
  const me = selfRef();
  for (const [n, ref] of [
    ['up', `${me.pid} ${me.startTime}\n`],
    ['db-2', `${me.pid} ${me.startTime}`],
    ['gone', `${me.pid} ${me.startTime + 1}\n`],
  ]) {
    fs.mkdirSync(`${run}/containers/${n}`, { recursive: true });
    fs.writeFileSync(`${run}/containers/${n}/init.pid`, ref);
  }
  // A node that fails: the launcher's answer must come from the helper alone.
  fs.mkdirSync(`${root}/fakenode`);
  fs.writeFileSync(`${root}/fakenode/node`, '#!/bin/sh\nexit 99\n', { mode: 0o755 });
  const env = { ...process.env, TSLXC_DIR: state, TSLXC_RUN_DIR: run };
  const verbs = table
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0]!.split(' '));
  // Every verb of the table without node; node's answer beside it for each kind and depth.
  const compared = new Set(['start', 'stop', 'info', 'snapshot create', 'config device add']);
  for (const verb of verbs) {
    for (const word of ['', 'd', 'db-', 'x']) {
      const args = ['__complete', ...verb, word];
      const native = spawnSync(launcherPath, args, { env: { ...env, PATH: `${root}/fakenode:${process.env.PATH}` }, encoding: 'utf8' });
      t.is(native.status, 0, `${args.join(' ')}: ${native.stderr}`);
      if (!compared.has(verb.join(' '))) continue;
      const node = spawnSync(process.execPath, [cliPath, ...args], { env, encoding: 'utf8' });
      t.is(native.stdout, node.stdout, args.join(' '));
    }
  }
  const offered = (...args: string[]) => spawnSync(launcherPath, ['__complete', ...args], { env, encoding: 'utf8' }).stdout;
  t.is(offered('start', ''), 'db-1\ndown\ngone\n');
  t.is(offered('stop', ''), 'db-2\nup\n');
  t.is(offered('info', 'db'), 'db-1\ndb-2\n');
  // What the helper leaves to node: options, a snapshot's NAME/, a second argument, other verbs.
  t.regex(offered('start', '--'), /^--help$/m);
  t.is(offered('snapshot', 'restore', 'down', ''), '');
  t.regex(offered('image', ''), /^export$/m);
});

/** A state dir with a few containers, and the bash completion function called as bash calls it. */
function bashComplete(stateDir: string, runDir: string, line: string, withBashCompletion = false): string[] {
  const script = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-completion-sh-'));
  try {
    fs.writeFileSync(`${script}/tslxc.bash`, SCRIPTS.bash!);
    const cwords = line.split(' ');
    const prog = [
      ...(withBashCompletion ? ['source /usr/share/bash-completion/bash_completion'] : []),
      `source ${script}/tslxc.bash`,
      `COMP_WORDS=(${[launcherPath, ...cwords].map((w) => `'${w}'`).join(' ')})`,
      `COMP_CWORD=${cwords.length}`,
      // bash splits words at COMP_WORDBREAKS (`=`, `:`), which the line has without spaces.
      `COMP_LINE='${launcherPath} ${line.replaceAll(' = ', '=')}'`,
      'COMP_POINT=${#COMP_LINE}',
      '_tslxc_complete',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', prog], {
      env: { ...process.env, TSLXC_DIR: stateDir, TSLXC_RUN_DIR: runDir },
      encoding: 'utf8',
    });
    return r.stdout.split('\n').filter(Boolean);
  } finally {
    fs.rmSync(script, { recursive: true, force: true });
  }
}

test('the bash script: sourced, its function fills COMPREPLY from tslxc __complete', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tslxc-test-completion-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  for (const n of ['web1', 'web2', 'db']) fs.mkdirSync(`${root}/state/containers/${n}/snapshots`, { recursive: true });
  fs.mkdirSync(`${root}/state/containers/db/snapshots/nightly`);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'sta'), ['start']);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'start we'), ['web1', 'web2']);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'stop '), []);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'snapshot restore db '), ['nightly']);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'list --format j'), ['json']);
  t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'list --format = j'), ['json']);
  // With bash-completion loaded (what the quickstart installs for), as in an interactive shell.
  if (fs.existsSync('/usr/share/bash-completion/bash_completion')) {
    t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'start we', true), ['web1', 'web2']);
    t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'copy db/', true), ['db/nightly']);
    t.deepEqual(bashComplete(`${root}/state`, `${root}/run`, 'list --format = j', true), ['json']);
  }
});

test('`tslxc completion` prints the scripts; an unknown shell is a usage error', (t) => {
  const run = (args: string[]) => spawnSync(launcherPath, args, { encoding: 'utf8' });
  t.is(run(['completion', 'bash']).stdout, SCRIPTS.bash);
  t.is(run(['completion', 'zsh']).stdout, SCRIPTS.zsh);
  const bad = run(['completion', 'fish']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /Choices: "bash", "zsh"|fish/);
  // Bash can read it.
  t.is(spawnSync('bash', ['-n'], { input: SCRIPTS.bash }).status, 0);
});
