import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Dashboard } from '../test/helpers/browser.js';
import { BenchEnv, launcherPath, repoRoot } from './env.js';
import { run, type RunResult } from './proc.js';

/**
 * The dashboard's figures (issue #20), in Debian's headless chromium against `tslxc serve` on
 * loopback: the instances page's first render with N containers (from the navigation's start to
 * the filled table, the session cookie already set), the bundle's gzipped size, and how long a
 * lifecycle event takes from its emission (the event's timestamp) to the changed row. Run alone:
 * `node dist/bench/ui.js [--count N] [--running R] [--runs K]`; it prints one JSON report.
 */
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COUNT = opt('count', 100);
const RUNNING = opt('running', 10);
const RUNS = opt('runs', 15);
const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);

async function ok(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  return r;
}

async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median_ms: s[Math.floor(s.length / 2)], min_ms: s[0], max_ms: s[s.length - 1], runs: s.length };
};

const env = new BenchEnv();
let server: ReturnType<typeof spawn> | undefined;
let dash: Dashboard | undefined;

async function main(): Promise<void> {
  await env.prepareTslxc();
  await ok(env.tslxc(['image', 'build', 'busybox']), 'tslxc image build busybox');
  const names = Array.from({ length: COUNT }, (_, i) => `u${String(i).padStart(3, '0')}`);
  log(`${COUNT} containers, ${RUNNING} running`);
  await pool(names, 4, (n) => ok(env.tslxc(['create', 'busybox', n]), `tslxc create ${n}`));
  await pool(names.slice(0, RUNNING), 2, (n) => ok(env.tslxc(['start', n]), `tslxc start ${n}`));

  server = spawn(launcherPath, ['serve', '--listen', '127.0.0.1:0'], { env: env.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  server.stderr!.on('data', (d) => (out += d));
  for (let i = 0; i < 1200 && !/https:\/\//.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  const address = /https:\/\/(\S+)/.exec(out)?.[1];
  if (!address) throw new Error(`tslxc serve did not say where it listens: ${out}`);
  const base = `https://${address}`;
  const token = (await ok(env.tslxc(['config', 'trust', 'add', 'bench']), 'config trust add')).stdout.trim().split('\n').pop()!;

  dash = await Dashboard.launch(base);
  const page = await dash.page();
  await page.goto(`${base}/ui/?token=${encodeURIComponent(token)}`);
  await page.waitForSelector('section[data-ready]', { timeout: 60_000 });

  const render: number[] = [];
  /** the list request alone (the page's first, GET /1.0/instances?recursion=1, preloaded with the HTML), as the page saw it */
  const listRequest: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // A new document each time (about:blank between), as a user opening the page.
    await page.goto('about:blank');
    await page.goto(`${base}/ui/#/instances`);
    await page.waitForSelector('section[data-ready]', { timeout: 60_000 });
    const rows = await page.$$eval('#instances tbody tr', (trs) => trs.length);
    if (rows !== COUNT) throw new Error(`${rows} rows, not ${COUNT}`);
    const t = await page.evaluate(() => ({
      rendered: performance.getEntriesByName('instances-rendered')[0]!.startTime,
      list:
        (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((e) => e.name.endsWith('/1.0/instances?recursion=1'))?.duration ?? NaN,
    }));
    render.push(t.rendered);
    listRequest.push(t.list);
    // The page reads the state and the metrics after its first paint: the next run starts when the
    // server is done with them, as a user's visit finds it.
    await page.waitForSelector('section[data-live]', { state: 'attached', timeout: 60_000 });
  }
  log(`first render: ${JSON.stringify(stats(render))}`);

  const latency: number[] = [];
  const target = names[RUNNING] ?? names[0]!;
  const socket = path.join(env.stateDir, 'unix.socket');
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    for (const [action, state] of [
      ['start', 'Running'],
      ['stop', 'Stopped'],
    ] as const) {
      await page.evaluate(
        ([name, want]) => {
          const w = window as unknown as Record<string, unknown>;
          w.seen = new Promise<number>((resolve) => {
            const observer = new MutationObserver(() => {
              if (document.querySelector(`tr[data-name="${name}"] td[data-state]`)?.getAttribute('data-state') !== want) return;
              observer.disconnect();
              resolve(performance.timeOrigin + performance.now());
            });
            observer.observe(document.querySelector('#instances tbody')!, { subtree: true, childList: true, attributes: true });
          });
        },
        [target, state] as const,
      );
      const before = dash.events.length;
      const put = await ok(
        run('curl', ['-s', '--unix-socket', socket, '-X', 'PUT', '-d', JSON.stringify({ action, force: true }), `http://x/1.0/instances/${target}/state`]),
        'PUT state',
      );
      const op = (JSON.parse(put.stdout) as { operation: string }).operation;
      await ok(run('curl', ['-s', '--unix-socket', socket, `http://x${op}/wait?timeout=60`]), 'wait');
      const seen = await page.evaluate(() => (window as unknown as Record<string, Promise<number>>).seen);
      const event = dash.events.slice(before).find((e) => e.action === `instance-${action === 'start' ? 'started' : 'stopped'}`);
      if (!event) throw new Error(`no ${action} event reached the page`);
      latency.push(seen - Date.parse(event.timestamp));
    }
  }
  log(`event to page: ${JSON.stringify(stats(latency))}`);
  const size = JSON.parse(fs.readFileSync(path.join(repoRoot, 'dist/ui/size.json'), 'utf8')) as { gzipBytes: number };
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(
    `${JSON.stringify({ count: COUNT, running: RUNNING, loadavg: load, first_render: stats(render), list_request: stats(listRequest), event_to_page: stats(latency), bundle_gzip_kib: size.gzipBytes / 1024 }, null, 2)}\n`,
  );
}

try {
  await main();
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await dash?.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  const problems = await env.cleanup(log);
  for (const p of problems) log(`cleanup: ${p}`);
}
