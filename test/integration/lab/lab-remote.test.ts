import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { ApiServer, run, type Json } from '../../helpers/api.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { teardownNetworks, uniqueBridge } from '../../helpers/network.js';

/**
 * Lab tokens with the real `lxc` 5.0 client over HTTPS: a member's token trusts their laptop with
 * their own containers only (start, stop, exec, file push; another member's are 404), the lab API
 * shows them only their member, `lab status` says who is trusted, and a member removed from the
 * file loses their certificate at the next `lab up`.
 */
if (requireRoot(test)) {
  const env = new TestEnv('labremote');
  const br = uniqueBridge();
  const file = path.join(env.root, 'lab.yaml');
  const labFile = (members: string[]) =>
    [
      'name: lr',
      `network: {name: ${br}, ipv4.nat: false}`,
      'defaults:',
      '  image: busybox',
      '  naming: "{member}-box"',
      'members:',
      ...members.map((m) => `  - name: ${m}`),
    ].join('\n') + '\n';
  let server: ApiServer;
  const aliceConf = path.join(env.root, 'conf-alice');
  const lxc = (args: string[], conf = aliceConf) =>
    run('lxc', args, { env: { ...process.env, LXD_CONF: conf, HOME: env.root, LXD_DIR: '/nonexistent' }, timeoutMs: 90_000 });
  const lxcOk = async (t: ExecutionContext, args: string[], conf = aliceConf) => {
    const r = await lxc(args, conf);
    t.is(r.code, 0, `lxc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const lastLine = (s: string) => s.trim().split('\n').pop()!;

  test.before(async () => {
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    fs.writeFileSync(file, labFile(['alice', 'bob']));
    const up = env.cli(['lab', 'up', file], { timeoutMs: 300_000 });
    if (up.code !== 0) throw new Error(up.stderr);
    server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']);
  });
  test.serial.after.always('server', async () => {
    await server?.stop();
  });
  test.serial.after.always('networks', async () => {
    env.cli(['lab', 'down', file]);
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial("a member's token: lxc remote add, then their containers and nobody else's", async (t) => {
    const tok = env.ok(t, ['lab', 'token', file, 'alice']);
    t.regex(tok, /^Client alice@lr certificate add token/m);
    await lxcOk(t, ['remote', 'add', 'lab', lastLine(tok)]);
    const list = JSON.parse(await lxcOk(t, ['list', 'lab:', '--format', 'json'])) as Json[];
    t.deepEqual(
      list.map((i) => i.name),
      ['alice-box'],
    );
    t.is((await lxcOk(t, ['exec', 'lab:alice-box', '--', 'hostname'])).trim(), 'alice-box');
    const src = path.join(env.root, 'hello.txt');
    fs.writeFileSync(src, 'hello from a laptop\n');
    await lxcOk(t, ['file', 'push', src, 'lab:alice-box/root/hello.txt']);
    t.is(await lxcOk(t, ['exec', 'lab:alice-box', '--', 'cat', '/root/hello.txt']), 'hello from a laptop\n');
    await lxcOk(t, ['stop', 'lab:alice-box', '--force']);
    t.is(JSON.parse(await lxcOk(t, ['query', 'lab:/1.0/instances/alice-box/state'])).status, 'Stopped');
    await lxcOk(t, ['start', 'lab:alice-box']);
    t.is(JSON.parse(await lxcOk(t, ['query', 'lab:/1.0/instances/alice-box/state'])).status, 'Running');

    // Bob's container does not exist for her.
    for (const args of [
      ['exec', 'lab:bob-box', '--', 'true'],
      ['stop', 'lab:bob-box', '--force'],
      ['file', 'push', src, 'lab:bob-box/root/x'],
      ['query', 'lab:/1.0/instances/bob-box'],
    ]) {
      const r = await lxc(args);
      t.not(r.code, 0, args.join(' '));
      t.regex(r.stderr, /not found/i, args.join(' '));
    }
    t.is(JSON.parse((await server.request('GET', '/1.0/instances/bob-box/state')).body).metadata.status, 'Running');
  });

  test.serial('the lab API: a member sees their lab and member only; resets only their own', async (t) => {
    const labs = JSON.parse(await lxcOk(t, ['query', 'lab:/1.0/labs?recursion=1'])) as Json[];
    t.is(labs.length, 1);
    t.like(labs[0], { name: 'lr', network: { name: br }, gateway: { port: 2222 } });
    t.deepEqual(
      labs[0].members.map((m: Json) => [m.name, m.trusted, m.instances.map((i: Json) => [i.name, i.status])]),
      [['alice', true, [['alice-box', 'Running']]]],
    );
    t.regex((await lxc(['query', '-X', 'POST', 'lab:/1.0/labs/lr/members/bob/reset'])).stderr, /not found/i);
    t.regex((await lxc(['query', '-X', 'POST', '--data', '{}', 'lab:/1.0/labs/lr/members/alice/token'])).stderr, /restricted/i);
    await lxcOk(t, ['exec', 'lab:alice-box', '--', 'touch', '/root/dirt']);
    await lxcOk(t, ['query', '-X', 'POST', 'lab:/1.0/labs/lr/members/alice/reset']);
    const after = await lxc(['exec', 'lab:alice-box', '--', 'ls', '/root/dirt']);
    t.not(after.code, 0, 'the reset put the root back');

    // The local (unrestricted) view: both members, and who is trusted.
    const all = JSON.parse((await server.request('GET', '/1.0/labs/lr')).body).metadata;
    t.deepEqual(
      all.members.map((m: Json) => [m.name, m.trusted]),
      [
        ['alice', true],
        ['bob', false],
      ],
    );
    t.deepEqual(JSON.parse((await server.request('GET', '/1.0/labs')).body).metadata, ['/1.0/labs/lr']);
    t.is((await server.request('GET', '/1.0/labs/nosuch')).status, 404);
    const tok = await server.request('POST', '/1.0/labs/lr/members/bob/token', { expires: '1h' });
    t.is(tok.status, 200, tok.body);
    t.is(JSON.parse(Buffer.from(tok.json!.metadata.token, 'base64').toString()).client_name, 'bob@lr');
    t.true(Math.abs(Date.parse(tok.json!.metadata.expires_at) - Date.now() - 3600_000) < 60_000);
    const st = JSON.parse(env.ok(t, ['lab', 'status', file, '--format', 'json']));
    t.deepEqual(
      st.containers.map((c: Json) => [c.member, c.trusted]),
      [
        ['alice', true],
        ['bob', false],
      ],
    );
    t.regex(env.ok(t, ['lab', 'status', file]), /^bob .*no \(token pending\)\s*$/m);
  });

  test.serial("tslxc remote add with a member's token: their containers, nobody else's; lab reset REMOTE:", async (t) => {
    env.ok(t, ['remote', 'add', 'lab', lastLine(env.ok(t, ['lab', 'token', file, 'alice']))]);
    t.deepEqual(
      (JSON.parse(env.ok(t, ['list', 'lab:', '--format', 'json'])) as Json[]).map((i) => i.name),
      ['alice-box'],
    );
    t.is(env.ok(t, ['exec', 'lab:alice-box', '--', 'hostname']).trim(), 'alice-box');
    const src = path.join(env.root, 'hello2.txt');
    fs.writeFileSync(src, 'from tslxc\n');
    for (const args of [
      ['exec', 'lab:bob-box', '--', 'true'],
      ['stop', 'lab:bob-box', '--force'],
      ['info', 'lab:bob-box'],
      ['file', 'push', src, 'lab:bob-box/root/x'],
      ['delete', '-f', 'lab:bob-box'],
    ]) {
      const r = env.cli(args);
      t.not(r.code, 0, args.join(' '));
      t.regex(r.stderr, /not found/i, args.join(' '));
    }
    t.is(JSON.parse((await server.request('GET', '/1.0/instances/bob-box/state')).body).metadata.status, 'Running');
    await lxcOk(t, ['exec', 'lab:alice-box', '--', 'touch', '/root/dirt']);
    const r = env.cli(['lab', 'reset', 'lab:']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^reset alice-box in \d+\.\ds$/m);
    t.not((await lxc(['exec', 'lab:alice-box', '--', 'ls', '/root/dirt'])).code, 0);
    const other = env.cli(['lab', 'reset', 'lab:lr', 'bob']);
    t.is(other.code, 1);
    t.regex(other.stderr, /^Error: Member "bob" is not in lab "lr" on remote "lab" \(its members you may see: alice\)/m);
    t.regex(env.cli(['lab', 'reset', 'lab:nosuch']).stderr, /No lab "nosuch" on remote "lab"/);
  });

  test.serial('a member removed from the file loses their certificate and tokens at lab up', async (t) => {
    fs.writeFileSync(file, labFile(['bob']));
    const up = env.cli(['lab', 'up', file]);
    t.is(up.code, 0, up.stderr);
    t.regex(up.stdout, /^revoked alice@lr \(member no longer in the file\)$/m);
    const r = await lxc(['list', 'lab:']);
    t.not(r.code, 0);
    t.notRegex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /^alice@lr,/m);
    t.regex(env.ok(t, ['config', 'trust', 'list', '--format', 'csv']), /^bob@lr,token,,lab lr member bob,/m);
    const down = env.cli(['lab', 'down', file]);
    t.is(down.code, 0, down.stderr);
    t.regex(down.stdout, /^revoked bob@lr$/m);
    t.false(fs.existsSync(path.join(env.paths.stateDir, 'labs', 'lr.json')));
  });
}
