import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ApiServer } from '../../helpers/api.js';
import { Dashboard, hasChromium } from '../../helpers/browser.js';
import { requireRoot, TestEnv } from '../../helpers/env.js';
import { teardownNetworks, uniqueBridge } from '../../helpers/network.js';
import { leftoverHooks } from '../../helpers/suite.js';

/**
 * The labs page in a real browser: an instructor's session sees the lab's members, their
 * containers and states, and makes a member's token; its login link opens a session for that
 * member alone, who sees only their containers and their member, and resets them.
 */
if (requireRoot(test)) {
  const env = new TestEnv('uilab');
  const br = uniqueBridge();
  const file = path.join(env.root, 'lab.yaml');
  let server: ApiServer;
  let dash: Dashboard;
  let base: string;

  test.serial.before(async () => {
    if (!hasChromium()) throw new Error('chromium is not installed (apt-get install chromium; .ci/run installs it)');
    const r = env.cli(['image', 'build', 'busybox']);
    if (r.code !== 0) throw new Error(r.stderr);
    fs.writeFileSync(
      file,
      [
        'name: ul',
        `network: {name: ${br}, ipv4.nat: false}`,
        'defaults:',
        '  image: busybox',
        '  naming: "{member}-box"',
        'members:',
        '  - name: alice',
        '  - name: bob',
        '',
      ].join('\n'),
    );
    const up = env.cli(['lab', 'up', file], { timeoutMs: 300_000 });
    if (up.code !== 0) throw new Error(up.stderr);
    server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']);
    base = `https://${server.httpsAddresses[0]}`;
    dash = await Dashboard.launch(base);
  });
  test.serial.after.always('browser and server', async () => {
    await dash?.close();
    await server?.stop();
  });
  test.serial.after.always('networks', async () => {
    env.cli(['lab', 'down', file]);
    await teardownNetworks(env);
  });
  leftoverHooks(test, env);

  test.serial("an instructor hands out a member's login link; the member sees and resets only their own", async (t) => {
    const admin = await dash.page();
    const tok = env.ok(t, ['config', 'trust', 'add', 'teacher']).trim().split('\n').pop()!;
    await admin.goto(`${base}/ui/?token=${encodeURIComponent(tok)}`);
    await admin.waitForSelector('#instances section, section[data-ready]');
    t.false(await admin.isHidden('#nav-labs'));
    await admin.click('#nav-labs');
    await admin.waitForSelector('section.lab[data-lab="ul"]');
    t.deepEqual(await admin.$$eval('section.lab tr[data-member]', (trs) => trs.map((tr) => tr.getAttribute('data-member'))), ['alice', 'bob']);
    t.regex((await admin.textContent('tr[data-member="bob"]'))!, /bob-box\s*Running/);
    await admin.click('button[aria-label="New token for alice"]');
    const link = await (await admin.waitForSelector('input[aria-label="login link for alice"]')).inputValue();
    t.true(link.startsWith(`${base}/ui/?token=`), link);
    t.deepEqual(dash.errors, []);

    const alice = await dash.page({ width: 390, height: 844 });
    alice.on('dialog', (d) => void d.accept());
    await alice.goto(link);
    await alice.waitForSelector('#instances tbody tr');
    t.deepEqual(await alice.$$eval('#instances tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-name'))), ['alice-box']);
    t.regex((await alice.textContent('#who'))!, /alice@ul \(only alice in lab ul\)/);
    await alice.click('#nav-labs');
    await alice.waitForSelector('section.lab[data-lab="ul"]');
    t.deepEqual(await alice.$$eval('section.lab tr[data-member]', (trs) => trs.map((tr) => tr.getAttribute('data-member'))), ['alice']);
    // A member gets no token button: tokens are for unrestricted callers.
    t.is(await alice.$('button[aria-label="New token for alice"]'), null);
    await alice.click('button[aria-label="Reset alice"]');
    await alice.waitForFunction(() => /alice reset/.test(document.querySelector('#toast')?.textContent ?? ''), undefined, { timeout: 180_000 });
    t.deepEqual(dash.errors, []);
    await alice.close();
    await admin.close();
  });

  test.serial('a member the lab file drops loses their session at the next lab up', async (t) => {
    const tok = env.ok(t, ['lab', 'token', file, 'bob']).trim().split('\n').pop()!;
    const bob = await dash.page();
    await bob.goto(`${base}/ui/?token=${encodeURIComponent(tok)}`);
    await bob.waitForSelector('#instances tbody tr[data-name="bob-box"]');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('  - name: bob\n', ''));
    const up = env.cli(['lab', 'up', file], { timeoutMs: 300_000 });
    t.is(up.code, 0, up.stderr);
    t.regex(up.stdout, /revoked bob@ul/);
    t.is(await bob.evaluate(async () => (await fetch('/1.0/instances')).status), 403);
    await bob.waitForSelector('#login-error:has-text("session ended")', { timeout: 15_000 });
    await bob.close();
    dash.errors.length = 0; // the 403 above, asked for
  });
}
