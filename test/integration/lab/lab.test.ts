import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { processesOf } from '../../helpers/leftovers.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { hostLinks, nftList, nftTable, teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { hostVethName } from '../../../lib/network/names.js';
import { ed25519KeyPair } from '../../../lib/ssh/keygen.js';

/**
 * A real lab of busybox members on a bridge of its own (a name unique to the run, ipv4.nat=false:
 * no traffic leaves the host): up, a second up that changes nothing, a member added, reset, files
 * refused before anything is made, down without leftovers.
 */
if (requireRoot(test)) {
  const env = new TestEnv('lab');
  const br = uniqueBridge();
  let table = '';
  const file = path.join(env.root, 'lab.yaml');
  const keys = new Map<string, string>();
  const keyOf = (m: string) => {
    if (!keys.has(m)) keys.set(m, ed25519KeyPair(`${m}@test`).public);
    return keys.get(m)!;
  };
  const labFile = (members: string[]) =>
    [
      'name: t1',
      `network: {name: ${br}, ipv4.nat: false}`,
      'gateway: {port: 2299, host: gw.test}',
      'defaults:',
      '  image: busybox',
      '  config: {limits.memory: 128MiB}',
      'volumes:',
      '  - {name: course, path: /srv/course, readonly: true}',
      '  - {name: work, path: /srv/work, scope: member}',
      'members:',
      ...members.map((m) => `  - name: ${m}\n    keys: ["${keyOf(m)}"]`),
    ].join('\n') + '\n';
  const ten = Array.from({ length: 10 }, (_, i) => `m${i + 1}`);
  const status = (t: ExecutionContext) => JSON.parse(env.ok(t, ['lab', 'status', file, '--format', 'json']));
  const listed = () =>
    (JSON.parse(env.cli(['list', '--format', 'json']).stdout) as Array<{ name: string; status: string }>).map((c) => `${c.name} ${c.status}`);
  const gatewayUsers = () => {
    const f = path.join(env.paths.stateDir, 'gateway', 'users.yaml');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  };
  const exec = (t: ExecutionContext, name: string, script: string) => env.ok(t, ['exec', name, '--', 'sh', '-c', script]);

  test.before(async () => {
    table = await nftTable(env);
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
  });
  test.serial.after.always('networks', async () => {
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial('lab up brings up 10 members, each with their container, volumes, start snapshot and gateway user', (t) => {
    fs.writeFileSync(file, labFile(ten));
    const t0 = Date.now();
    const r = env.cli(['lab', 'up', file], { timeoutMs: 300_000 });
    t.is(r.code, 0, r.stderr);
    t.log(`lab up, 10 busybox members: ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    for (const m of ten) t.regex(r.stdout, new RegExp(`^created ${m}$`, 'm'));
    t.regex(r.stdout, new RegExp(`^created network ${br}$`, 'm'));
    t.regex(r.stdout, /^created volume default\/t1-course$/m);
    t.regex(r.stdout, /^created volume default\/t1-m10-work$/m);

    const st = status(t);
    t.is(st.containers.length, 10);
    for (const c of st.containers) {
      t.is(c.state, 'RUNNING', c.container);
      t.is(c.container, c.member);
      t.is(c.connect, `ssh -p 2299 ${c.member}@gw.test`);
    }
    t.is(st.network.name, br);
    t.true(fs.existsSync(`/sys/class/net/${br}/bridge`));
    const users = gatewayUsers();
    for (const m of ten) t.true(users.includes(keyOf(m).split(' ')[1]), `${m}'s key in the gateway users`);
    t.is((users.match(/lab: t1/g) ?? []).length, 10);
    const snaps = JSON.parse(env.ok(t, ['snapshot', 'list', 'm3', '--format', 'json']));
    t.deepEqual(
      snaps.map((s: { name: string }) => s.name),
      ['lab-start'],
    );
    // The volumes are there: the shared one read-only, the member's own writable.
    t.regex(exec(t, 'm3', 'touch /srv/work/x && echo ok; touch /srv/course/x 2>&1 || echo ro'), /ok\n[\s\S]*ro/);
    const cfg = env.ok(t, ['config', 'show', 'm3']);
    t.regex(cfg, /user\.lab: t1/);
    t.regex(cfg, /user\.lab\.member: m3/);
  });

  test.serial('a second up changes nothing', (t) => {
    const r = env.cli(['lab', 'up', file]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /lab t1 is up to date \(10 containers running\)/);
    t.notRegex(r.stdout, /^(created|updated|started|added)/m);
  });

  test.serial('a member added to the file: up creates only that member', (t) => {
    fs.writeFileSync(file, labFile([...ten, 'm11']));
    const r = env.cli(['lab', 'up', file]);
    t.is(r.code, 0, r.stderr);
    const changes = r.stdout.split('\n').filter((l) => /^(created|updated|started|added|deleted|removed)/.test(l));
    t.deepEqual(changes, ['created volume default/t1-m11-work', 'created m11', 'added gateway user m11']);
    t.is(status(t).containers.find((c: { container: string }) => c.container === 'm11').state, 'RUNNING');
  });

  test.serial("reset restores a member's container to its start state in seconds, and only theirs", (t) => {
    exec(t, 'm1', 'echo mine > /root/marker && echo kept > /srv/work/notes');
    exec(t, 'm2', 'echo theirs > /root/marker');
    const ipBefore = status(t).containers.find((c: { container: string }) => c.container === 'm1').ipv4;
    const t0 = Date.now();
    const r = env.cli(['lab', 'reset', file, 'm1']);
    const secs = (Date.now() - t0) / 1000;
    t.is(r.code, 0, r.stderr);
    t.log(`lab reset of one busybox member (CLI wall time): ${secs.toFixed(2)} s; ${r.stdout.trim()}`);
    t.regex(r.stdout, /^reset m1 in \d+\.\d+s$/m);
    t.true(secs < 10);
    t.is(exec(t, 'm1', 'ls /root/marker 2>/dev/null || echo gone').trim(), 'gone');
    t.is(exec(t, 'm1', 'cat /srv/work/notes').trim(), 'kept', "the member's volume is not part of the reset");
    t.is(exec(t, 'm2', 'cat /root/marker').trim(), 'theirs');
    const after = status(t).containers.find((c: { container: string }) => c.container === 'm1');
    t.is(after.state, 'RUNNING');
    t.deepEqual(after.ipv4, ipBefore, 'the address is kept');
    const bad = env.cli(['lab', 'reset', file, 'nobody']);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /Member "nobody" is not in lab "t1"/);
  });

  test.serial('a failed up says what failed and keeps the rest; running up again finishes the job', (t) => {
    // A profile whose disk's host source does not exist yet: m12 cannot start.
    const src = path.join(env.root, 'flaky-src');
    fs.writeFileSync(
      path.join(env.paths.stateDir, 'profiles', 'flaky.yaml'),
      `description: test\nconfig: {}\ndevices:\n  data: {type: disk, source: ${src}, path: /mnt/data}\n`,
    );
    fs.writeFileSync(file, labFile([...ten, 'm11']).replace(/\n$/, '') + `\n  - name: m12\n    keys: ["${keyOf('m12')}"]\n    profiles: [default, flaky]\n`);
    const r = env.cli(['lab', 'up', file]);
    t.is(r.code, 1, r.stdout);
    t.regex(r.stderr, /^failed: m12: /m);
    t.regex(r.stderr, /^Error: Lab "t1" is not complete: 1 of 12 failed \(m12: .*\) \(what was made is kept; fix the cause and run "tslxc lab up /m);
    const st = status(t);
    t.is(st.containers.filter((c: { state: string }) => c.state === 'RUNNING').length, 11);
    fs.mkdirSync(src);
    const again = env.cli(['lab', 'up', file]);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stdout, /^(started|created) m12$/m);
    t.is(status(t).containers.find((c: { container: string }) => c.container === 'm12').state, 'RUNNING');
    t.deepEqual(
      JSON.parse(env.ok(t, ['snapshot', 'list', 'm12', '--format', 'json'])).map((s: { name: string }) => s.name),
      ['lab-start'],
    );
  });

  test.serial('invalid lab files are refused with line and field, and nothing is made', (t) => {
    env.ok(t, ['create', 'busybox', 'taken']);
    // Links this lab could have made (its bridge, its members' veths), not every tsl* link: test
    // files running beside this one make and remove their own.
    const labLinks = () => hostLinks(`${br}x`, ...['a', 'taken', 'm1'].map((m) => hostVethName(env.paths.stateDir, m, 'eth0')));
    const before = { list: listed(), users: gatewayUsers(), links: labLinks() };
    const bad = path.join(env.root, 'bad.yaml');
    const cases: Array<[string, RegExp]> = [
      [
        `name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: a\n    profiles: [default, nosuch]\n`,
        /line 5, field "members\[0\]\.profiles": profile "nosuch" does not exist/,
      ],
      [
        `name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: a\n    keys: [ssh-rsa AAAAB3broken]\n`,
        /line 5, field "members\[0\]\.keys\[0\]": not an OpenSSH public key/,
      ],
      [`name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: a\n  - name: a\n`, /line 5, field "members\[1\]\.name": member "a" is declared twice/],
      [`name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: a\n    colour: red\n`, /line 5, field "members\[0\]\.colour": unknown key "colour"/],
      [
        `name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: a\n  - name: taken\n`,
        /line 5, field "members\[1\]": container "taken" \(member "taken"\) exists and is not part of this lab/,
      ],
      [
        `name: t2\nnetwork: {name: ${br}x}\nmembers:\n  - name: m1\n`,
        /line 4, field "members\[0\]": container "m1" \(member "m1"\) exists and is part of lab "t1"/,
      ],
      [
        `name: t2\nnetwork: {name: ${br}x}\ndefaults: {image: nosuchimage}\nmembers:\n  - name: a\n`,
        /line 3, field "defaults\.image": image "nosuchimage" is neither/,
      ],
    ];
    for (const [text, re] of cases) {
      fs.writeFileSync(bad, text);
      const r = env.cli(['lab', 'up', bad]);
      t.is(r.code, 1, text);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.regex(r.stderr, new RegExp(`^Error: Invalid lab file ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, `));
      t.regex(r.stderr, re);
    }
    t.deepEqual(listed(), before.list);
    t.is(gatewayUsers(), before.users);
    t.deepEqual(labLinks(), before.links);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'networks', `${br}x.yaml`)));
    env.ok(t, ['delete', 'taken']);
  });

  test.serial('down removes containers, gateway users, network, bridge, nft rules and processes; volumes stay unless --volumes', (t) => {
    const r = env.cli(['lab', 'down', file]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^deleted m7$/m);
    t.regex(r.stdout, new RegExp(`^deleted network ${br}$`, 'm'));
    t.regex(r.stdout, /volumes kept: .*default\/t1-course/);
    t.deepEqual(listed(), []);
    t.notRegex(gatewayUsers(), /name:/);
    t.deepEqual(hostLinks(br), []);
    t.is(nftList(table), undefined, `nft table ${table} left`);
    t.deepEqual(processesOf(env), []);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'networks', `${br}.yaml`)));
    const vols = JSON.parse(env.ok(t, ['storage', 'volume', 'list', 'default', '--format', 'json'])).map((v: { name: string }) => v.name);
    t.deepEqual(vols.sort(), ['t1-course', ...[...ten, 'm11', 'm12'].map((m) => `t1-${m}-work`)].sort());

    const again = env.cli(['lab', 'down', file, '--volumes']);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stdout, /^deleted volume default\/t1-course$/m);
    t.deepEqual(JSON.parse(env.ok(t, ['storage', 'volume', 'list', 'default', '--format', 'json'])), []);
  });
}
