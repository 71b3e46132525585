import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Page } from 'playwright-core';
import { ApiServer } from '../../helpers/api.js';
import { Dashboard, hasChromium } from '../../helpers/browser.js';
import { repoRoot, requireRoot, TestEnv } from '../../helpers/env.js';
import { leftoverHooks } from '../../helpers/suite.js';
import { cgroupsOf } from '../../../lib/cgroup/context.js';

/**
 * The dashboard in a real browser (Debian's chromium, headless): login with a token in the
 * address and pasted, the live instances table, start and stop seen without reloading, a terminal
 * running `hostname` and following the window's size, a limit refused then applied to the cgroup,
 * snapshots, a restricted session that sees only its instances, logout, and no request leaving
 * loopback. With TSLXC_SCREENSHOTS=1 the README's screenshots (docs/screenshots/) are made here.
 */
if (requireRoot(test)) {
  const env = new TestEnv('ui');
  let server: ApiServer;
  let dash: Dashboard;
  let base: string;
  let main: Page;

  test.serial.before(async () => {
    if (!hasChromium()) throw new Error('chromium is not installed (apt-get install chromium; .ci/run installs it)');
    for (const args of [
      ['image', 'build', 'busybox'],
      ['create', 'busybox', 'c1'],
      ['create', 'busybox', 'c2'],
      ['create', 'busybox', 'other1'],
      ['start', 'c1'],
    ]) {
      const r = env.cli(args);
      if (r.code !== 0) throw new Error(`tslxc ${args.join(' ')}: ${r.stderr}`);
    }
    server = await ApiServer.start(env, ['--listen', '127.0.0.1:0']);
    base = `https://${server.httpsAddresses[0]}`;
    dash = await Dashboard.launch(base);
  });
  test.serial.after.always(async () => {
    await dash?.close();
    await server?.stop();
  });
  leftoverHooks(test, env);

  const token = (name: string, ...extra: string[]) => {
    const r = env.cli(['config', 'trust', 'add', name, ...extra]);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim().split('\n').pop()!;
  };
  const shot = async (page: Page, name: string) => {
    const dir = process.env.TSLXC_SCREENSHOTS ? path.join(repoRoot, 'docs/screenshots') : env.root;
    fs.mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`) });
  };
  const rowNames = (page: Page) => page.$$eval('#instances tbody tr:not([hidden])', (trs) => trs.map((tr) => tr.getAttribute('data-name')));
  const waitText = (page: Page, selector: string, re: RegExp, timeout = 30_000) =>
    page.waitForFunction(([sel, src]) => new RegExp(src).test(document.querySelector(sel)?.textContent ?? ''), [selector, re.source] as const, { timeout });

  /** The container's file in the cgroup v1 hierarchy of `controller` (v2: its one dir). */
  async function cgFile(name: string, controller: string, file: string): Promise<string> {
    const cg = await cgroupsOf(env.ctx);
    const dirs = cg.dirs(name);
    const marker = `/${env.paths.cgroupPrefix}/`;
    const d =
      cg.version === 'v2'
        ? dirs[0]
        : dirs.find((x) =>
            path
              .basename(x.slice(0, x.indexOf(marker)))
              .split(',')
              .includes(controller),
          );
    return fs.readFileSync(path.join(d!, file), 'utf8').trim();
  }

  test.serial('a token in the address opens a session, leaves the address bar and works once', async (t) => {
    const tok = token('admin1');
    main = await dash.page();
    await main.goto(`${base}/ui/?token=${encodeURIComponent(tok)}`);
    await main.waitForSelector('#instances tbody tr[data-name="c1"]');
    t.false(main.url().includes('token'), main.url());
    const cookie = (await main.context().cookies()).find((c) => c.name === 'tslxc_session');
    t.truthy(cookie);
    t.true(cookie!.httpOnly);
    t.true(cookie!.secure);
    t.is(cookie!.sameSite, 'Strict');
    t.true(cookie!.expires * 1000 > Date.now());
    t.deepEqual(await rowNames(main), ['c1', 'c2', 'other1']);
    t.is(await main.getAttribute('tr[data-name="c1"] td[data-state]', 'data-state'), 'Running');
    t.is(await main.textContent('#who'), 'admin1');
    // The running row's CPU and memory history has a line once the table was read twice.
    await main.waitForSelector('tr[data-name="c1"] svg.spark polyline', { state: 'attached', timeout: 20_000 });
    await shot(main, 'instances');
    t.deepEqual(dash.errors, []);

    // Spent: the same token again is refused, with the reason on the login page.
    const again = await dash.page();
    await again.goto(`${base}/ui/?token=${encodeURIComponent(tok)}`);
    await waitText(again, '#login-error', /not valid/);
    t.deepEqual(
      (await again.context().cookies()).filter((c) => c.name === 'tslxc_session'),
      [],
    );
    await again.close();
    dash.errors.length = 0; // the refused login's 403, asked for
  });

  test.serial('the filter box narrows the table; "/" focuses it', async (t) => {
    await main.keyboard.press('/');
    t.is(await main.evaluate(() => document.activeElement?.id), 'filter');
    await main.keyboard.type('other');
    t.deepEqual(await rowNames(main), ['other1']);
    await main.fill('#filter', '');
    t.deepEqual(await rowNames(main), ['c1', 'c2', 'other1']);
  });

  test.serial('start and stop change the row without a reload; an event reaches the page quickly', async (t) => {
    await main.click('tr[data-name="c2"] button[data-action="start"]');
    await main.waitForSelector('tr[data-name="c2"] td[data-state="Running"]', { timeout: 60_000 });
    // A stop by another client (the unix socket): the page learns it from /1.0/events.
    await main.evaluate(() => {
      const w = window as unknown as Record<string, unknown>;
      w.seenStopped = new Promise<number>((resolve) => {
        const check = () => {
          if (document.querySelector('tr[data-name="c2"] td[data-state]')?.getAttribute('data-state') !== 'Stopped') return;
          observer.disconnect();
          resolve(performance.timeOrigin + performance.now());
        };
        const observer = new MutationObserver(check);
        observer.observe(document.querySelector('#instances tbody')!, { subtree: true, childList: true, attributes: true });
      });
    });
    const put = await server.request('PUT', '/1.0/instances/c2/state', { action: 'stop', force: true });
    t.is(put.status, 202, put.body);
    const op = await server.request('GET', `${put.json!.operation!}/wait?timeout=60`);
    t.is(op.json?.metadata?.status, 'Success');
    const seen = await main.evaluate(() => (window as unknown as Record<string, Promise<number>>).seenStopped);
    // From the event's emission (its timestamp, the server's clock: the same host's) to the row.
    const event = dash.events.find((e) => e.action === 'instance-stopped' && e.source === '/1.0/instances/c2');
    t.truthy(event);
    const latency = seen - Date.parse(event!.timestamp);
    t.log(`event to page: ${latency.toFixed(0)} ms`);
    t.true(latency < 1000, `${latency} ms`);
    t.deepEqual(dash.errors, []);
  });

  test.serial('the terminal runs hostname and follows the window size', async (t) => {
    await main.goto(`${base}/ui/#/instances/c1`);
    await main.waitForSelector('section[data-ready]');
    await main.click('#open-terminal');
    await main.waitForSelector('#terminal .xterm-rows');
    await waitText(main, '#terminal .xterm-rows', /c1:.*#/);
    await main.click('#terminal');
    await main.keyboard.type('echo "$(hostname)-$((6*7))"\n');
    await waitText(main, '#terminal .xterm-rows', /c1-42/);
    const size = async () => {
      const marker = `size${Math.floor(Math.random() * 1e6)}`;
      await main.keyboard.type(`echo "${marker}-$(stty size | tr ' ' x)"\n`);
      await waitText(main, '#terminal .xterm-rows', new RegExp(`${marker}-\\d+x\\d+`));
      const m = new RegExp(`${marker}-(\\d+)x(\\d+)`).exec((await main.textContent('#terminal .xterm-rows')) ?? '')!;
      return { rows: Number(m[1]), cols: Number(m[2]) };
    };
    const before = await size();
    t.true(before.cols > 80, JSON.stringify(before));
    await shot(main, 'instance');
    await main.setViewportSize({ width: 700, height: 800 });
    await main.waitForTimeout(500);
    const after = await size();
    t.true(after.cols < before.cols, `${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    await main.setViewportSize({ width: 1280, height: 800 });
    await main.click('#open-terminal'); // closes it
    t.deepEqual(dash.errors, []);
  });

  test.serial('a bad limit shows the validation error; a good one reaches the cgroup', async (t) => {
    await main.fill('#config-key', 'limits.memory');
    await main.fill('#config-value', 'lots');
    await main.click('#config-form button[type="submit"]');
    await waitText(main, '#config-error', /\S/);
    t.regex((await main.textContent('#config-error'))!, /limits\.memory|lots/);
    await main.fill('#config-value', '96MiB');
    await main.click('#config-form button[type="submit"]');
    await waitText(main, '#config', /limits\.memory\s*96MiB/);
    t.is(await main.textContent('#config-error'), '');
    const v2 = (await cgroupsOf(env.ctx)).version === 'v2';
    t.is(await cgFile('c1', 'memory', v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(96 * 2 ** 20));
    t.deepEqual(dash.errors, []);
  });

  test.serial('snapshots: create, restore, delete', async (t) => {
    await main.fill('#snapshot-name', 'snap0');
    await main.click('#snapshot-form button[type="submit"]');
    await main.waitForSelector('tr[data-snapshot="snap0"]', { timeout: 60_000 });
    await main.click('button[aria-label="Restore snap0"]');
    await waitText(main, '#toast', /snap0: restore done/, 120_000);
    await main.click('button[aria-label="Delete snap0"]');
    await main.waitForSelector('tr[data-snapshot="snap0"]', { state: 'detached', timeout: 60_000 });
    t.deepEqual(JSON.parse(env.ok(t, ['snapshot', 'list', 'c1', '--format', 'json']) || '[]'), []);
    t.deepEqual(dash.errors, []);
  });

  test.serial('images as a tree, the host, and a phone-sized window', async (t) => {
    await main.goto(`${base}/ui/#/images`);
    await main.waitForSelector('section[data-ready]');
    t.regex((await main.textContent('#image-tree'))!, /busybox/);
    t.deepEqual(await main.$$eval('#descendant-containers a', (as) => as.map((a) => a.textContent)), ['c1', 'c2', 'other1']);
    await shot(main, 'images');
    await main.goto(`${base}/ui/#/host`);
    await main.waitForSelector('section[data-ready]');
    t.regex((await main.textContent('#host'))!, /CPUs/);
    t.true((await main.$$('#pools tbody tr')).length >= 1);
    await main.setViewportSize({ width: 390, height: 844 });
    await main.goto(`${base}/ui/#/instances`);
    await main.waitForSelector('section[data-ready]');
    const overflow = await main.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    t.true(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    await main.setViewportSize({ width: 1280, height: 800 });
    t.deepEqual(dash.errors, []);
  });

  test.serial('a restricted session sees only its instances; the API answers 404 and 403 for the rest', async (t) => {
    const page = await dash.page();
    await page.goto(`${base}/ui/`);
    await page.fill('#token', token('member1', '--instances', 'c*'));
    await page.click('form.login button[type="submit"]');
    await page.waitForSelector('section[data-ready]');
    t.deepEqual(await rowNames(page), ['c1', 'c2']);
    t.regex((await page.textContent('#who'))!, /member1 \(only c\*\)/);
    t.deepEqual(dash.errors, []);
    const answers = await page.evaluate(async () => {
      const csrf = ((await (await fetch('/ui/session')).json()) as { csrf: string }).csrf;
      const change = (path: string, body: unknown, withCsrf = true) =>
        fetch(path, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json', ...(withCsrf ? { 'X-Tslxc-CSRF': csrf } : {}) },
          body: JSON.stringify(body),
        });
      const tree = (await (await fetch('/1.0/tslxc/image-tree')).json()) as { metadata: Array<{ containers: string[] }> };
      return {
        get: (await fetch('/1.0/instances/other1')).status,
        state: (await fetch('/1.0/instances/other1/state')).status,
        stop: (await change('/1.0/instances/other1/state', { action: 'start' })).status,
        noCsrf: (await change('/1.0/instances/c2/state', { action: 'start' }, false)).status,
        treeContainers: tree.metadata.flatMap((n) => n.containers),
      };
    });
    t.deepEqual(answers, { get: 404, state: 404, stop: 404, noCsrf: 403, treeContainers: ['c1', 'c2'] });
    // The metrics the page reads CPU and memory from hold only its instances' series.
    env.cli(['start', 'other1']);
    try {
      const series = await page.evaluate(async () => [...(await (await fetch('/1.0/metrics')).text()).matchAll(/name="([^"]+)"/g)].map((m) => m[1]));
      t.true(series.includes('c1'), series.join(' '));
      t.false(series.includes('other1'), series.join(' '));
      await page.waitForSelector('tr[data-name="c1"] td.num svg.spark', { state: 'attached', timeout: 20_000 });
    } finally {
      env.cli(['stop', '--force', 'other1']);
    }
    // No session at all: the API is closed, as before the dashboard.
    const stranger = await dash.page();
    await stranger.goto(`${base}/ui/`);
    await stranger.waitForSelector('form.login');
    t.is(await stranger.evaluate(async () => (await fetch('/1.0/instances')).status), 403);
    await stranger.close();
    await page.close();
    dash.errors.length = 0; // the refusals above, asked for
  });

  test.serial('config trust remove NAME ends its session: the page goes back to the login, the cookie gets 403', async (t) => {
    const page = await dash.page();
    await page.goto(`${base}/ui/?token=${encodeURIComponent(token('gone1'))}`);
    await page.waitForSelector('section[data-ready]');
    t.is(await page.evaluate(async () => (await fetch('/1.0/instances')).status), 200);
    t.regex(env.ok(t, ['config', 'trust', 'list']), /gone1\s+session/);
    t.regex(env.ok(t, ['config', 'trust', 'remove', 'gone1']), /Dashboard session gone1 removed/);
    t.is(await page.evaluate(async () => (await fetch('/1.0/instances')).status), 403);
    // Its events socket is closed by the server, and the page says why without a reload.
    await waitText(page, '#login-error', /session ended/, 15_000);
    await page.close();
    dash.errors.length = 0; // the 403 above, asked for
  });

  test.serial('logout ends the session', async (t) => {
    await main.goto(`${base}/ui/#/instances`);
    await main.waitForSelector('section[data-ready]');
    await main.click('#logout');
    await main.waitForSelector('form.login');
    t.deepEqual(
      (await main.context().cookies()).filter((c) => c.name === 'tslxc_session'),
      [],
    );
    t.is(await main.evaluate(async () => (await fetch('/1.0/instances')).status), 403);
  });

  test.serial('no request left loopback', (t) => {
    t.true(dash.requests.length > 20);
    const away = dash.requests.filter((u) => !u.startsWith('data:') && new URL(u).hostname !== '127.0.0.1');
    t.deepEqual(away, []);
  });
}
